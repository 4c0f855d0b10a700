package bugs

import "testing"

func TestSet(t *testing.T) {
	var zero Set
	if !zero.Empty() || zero.Has(AckBeforeSync) || zero.String() != "none" {
		t.Fatalf("zero set: %v", zero)
	}
	s := Of(SkipChecksum, AckBeforeSync)
	for b := Bug(1); b < numBugs; b++ {
		if want := b == SkipChecksum || b == AckBeforeSync; s.Has(b) != want {
			t.Errorf("Has(%v) = %v, want %v", b, s.Has(b), want)
		}
		if names[b] == "" {
			t.Errorf("bug %d has no name", b)
		}
	}
	if got := s.String(); got != "AckBeforeSync+SkipChecksum" {
		t.Errorf("String() = %q", got)
	}
}

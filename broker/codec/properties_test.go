package codec

import "testing"

func TestSetAndDeleteProperty(t *testing.T) {
	for _, tc := range []struct {
		name, in, key, value string
		wantSet, wantDelete  string
	}{
		{"empty block", "", "DELAY", "3", "DELAY\x013\x02", ""},
		{"Go style, key absent", "TAGS\x01a\x02", "DELAY", "3", "TAGS\x01a\x02DELAY\x013\x02", "TAGS\x01a\x02"},
		{"Java style, no trailing separator", "TAGS\x01a", "DELAY", "3", "TAGS\x01a\x02DELAY\x013\x02", "TAGS\x01a"},
		{"replaced, moved to the end", "DELAY\x011\x02TAGS\x01a\x02", "DELAY", "18", "TAGS\x01a\x02DELAY\x0118\x02", "TAGS\x01a\x02"},
		{"last entry without separator deleted", "TAGS\x01a\x02DELAY\x011", "DELAY", "2", "TAGS\x01a\x02DELAY\x012\x02", "TAGS\x01a\x02"},
		{"duplicates all removed", "DELAY\x011\x02K\x01v\x02DELAY\x012\x02", "DELAY", "4", "K\x01v\x02DELAY\x014\x02", "K\x01v\x02"},
		{"a key that only prefixes another stays", "DELAYX\x011\x02", "DELAY", "2", "DELAYX\x011\x02DELAY\x012\x02", "DELAYX\x011\x02"},
		{"value containing the key stays", "K\x01DELAY\x02", "DELAY", "2", "K\x01DELAY\x02DELAY\x012\x02", "K\x01DELAY\x02"},
		{"malformed entries of other keys kept", "junk\x02K\x01v\x01w\x02", "DELAY", "1", "junk\x02K\x01v\x01w\x02DELAY\x011\x02", "junk\x02K\x01v\x01w\x02"},
		{"malformed entry of the key removed", "DELAY\x011\x012\x02K\x01v\x02", "DELAY", "5", "K\x01v\x02DELAY\x015\x02", "K\x01v\x02"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := SetProperty(tc.in, tc.key, tc.value); got != tc.wantSet {
				t.Errorf("SetProperty = %q, want %q", got, tc.wantSet)
			} else if v := Property(got, tc.key); v != tc.value {
				t.Errorf("Property after SetProperty = %q, want %q", v, tc.value)
			}
			got := DeleteProperty(tc.in, tc.key)
			if got != tc.wantDelete {
				t.Errorf("DeleteProperty = %q, want %q", got, tc.wantDelete)
			}
			if v := Property(got, tc.key); v != "" {
				t.Errorf("Property after DeleteProperty = %q, want none", v)
			}
		})
	}
}

// FuzzSetProperty: whatever the block, SetProperty makes Property read the value set, and
// every other key reads as before.
func FuzzSetProperty(f *testing.F) {
	f.Add("TAGS\x01a\x02KEYS\x01k1 k2\x02", "DELAY", "3")
	f.Add("DELAY\x011", "DELAY", "18")
	f.Add("\x02\x01\x02", "X", "")
	f.Fuzz(func(t *testing.T, s, key, value string) {
		if key == "" || containsSep(key) || containsSep(value) {
			return
		}
		before := ParseProperties(s)
		out := SetProperty(s, key, value)
		after := ParseProperties(out)
		if after[key] != value || Property(out, key) != value {
			t.Fatalf("SetProperty(%q, %q, %q) = %q reads %q", s, key, value, out, after[key])
		}
		for k, v := range before {
			if k != key && after[k] != v {
				t.Fatalf("SetProperty(%q, %q, %q) = %q changed %q from %q to %q", s, key, value, out, k, v, after[k])
			}
		}
		del := DeleteProperty(out, key)
		if _, ok := ParseProperties(del)[key]; ok {
			t.Fatalf("DeleteProperty(%q, %q) = %q still holds the key", out, key, del)
		}
	})
}

func containsSep(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == 1 || s[i] == 2 {
			return true
		}
	}
	return false
}

package metrics

import "testing"

func TestOrAndIs(t *testing.T) {
	if Is(nil) || Is(Nop{}) || Is(Or(nil)) {
		t.Errorf("nil and Nop must not count as recording")
	}
	Or(nil).Counter(&Desc{Name: "x_total", Kind: KindCounter}).Add(1) // a no-op, never a nil dereference
}

func TestNewRefusesAConflictingDeclaration(t *testing.T) {
	a := New("sluice_metrics_test_total", "A test counter.", KindCounter, "topic")
	if b := New("sluice_metrics_test_total", "A test counter.", KindCounter, "topic"); b != a {
		t.Errorf("the same declaration twice gave two descriptions")
	}
	defer func() {
		if recover() == nil {
			t.Errorf("a second declaration with other labels did not panic")
		}
	}()
	New("sluice_metrics_test_total", "A test counter.", KindCounter, "queue")
}

func TestAllIsSortedAndUnique(t *testing.T) {
	New("sluice_metrics_test_b", "b", KindGauge)
	New("sluice_metrics_test_a", "a", KindGauge)
	all := All()
	for i := 1; i < len(all); i++ {
		if all[i-1].Name >= all[i].Name {
			t.Errorf("All: %s before %s", all[i-1].Name, all[i].Name)
		}
	}
}

package controller

import (
	"encoding/json"
	"reflect"
	"testing"
)

// groupBody hands back the body it encoded last time when sameGroupInfo finds the info the
// same, so sameGroupInfo must tell apart any two infos that encode differently: changing any
// one field of GroupInfo (or of a ReplicaInfo in it) must make it report a difference.
func TestSameGroupInfoSeesEveryField(t *testing.T) {
	base := GroupInfo{Cluster: "c", Group: "g", MasterID: 1, MasterAddr: "a:1", MasterEpoch: 2,
		InSync: []int64{1, 2}, InSyncEpoch: 3, Replicas: []ReplicaInfo{{ID: 1, Addr: "a:1", Alive: true}}}
	clone := func(g GroupInfo) GroupInfo {
		var out GroupInfo
		b, _ := json.Marshal(g)
		if err := json.Unmarshal(b, &out); err != nil {
			t.Fatal(err)
		}
		return out
	}
	if !sameGroupInfo(base, clone(base)) {
		t.Fatal("an info and its copy differ")
	}
	gt := reflect.TypeFor[GroupInfo]()
	for i := range gt.NumField() {
		changed := clone(base)
		if !perturb(reflect.ValueOf(&changed).Elem().Field(i)) {
			t.Fatalf("field %s: kind not covered by this test", gt.Field(i).Name)
		}
		if sameGroupInfo(base, changed) {
			t.Errorf("changing %s goes unnoticed", gt.Field(i).Name)
		}
	}
	rt := reflect.TypeFor[ReplicaInfo]()
	for i := range rt.NumField() {
		changed := clone(base)
		if !perturb(reflect.ValueOf(&changed.Replicas[0]).Elem().Field(i)) {
			t.Fatalf("replica field %s: kind not covered by this test", rt.Field(i).Name)
		}
		if sameGroupInfo(base, changed) {
			t.Errorf("changing replica %s goes unnoticed", rt.Field(i).Name)
		}
	}
	// An empty in-sync set encodes as [], a missing one as null.
	empty, missing := clone(base), clone(base)
	empty.InSync, missing.InSync = []int64{}, nil
	if sameGroupInfo(empty, missing) {
		t.Error("an empty in-sync set and a missing one are taken for the same")
	}
}

// perturb changes f's value (a string, an integer, a bool or a slice, which grows by one zero
// element); false if f is of another kind.
func perturb(f reflect.Value) bool {
	switch f.Kind() {
	case reflect.String:
		f.SetString(f.String() + "x")
	case reflect.Int64:
		f.SetInt(f.Int() + 1)
	case reflect.Bool:
		f.SetBool(!f.Bool())
	case reflect.Slice:
		f.Set(reflect.Append(f, reflect.New(f.Type().Elem()).Elem()))
	default:
		return false
	}
	return true
}

package node_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// nodePackages are the packages whose code runs inside a node (directories relative to the
// repository root). They must stay deterministic: see package node and docs/architecture.md.
var nodePackages = []string{
	"broker/node",
	"broker/codec",
	"broker/route",
	"broker/store",
	"broker/store/keyindex",
	"broker/namesrv",
	"broker/brokernode",
	"broker/sqlfilter",
	"broker/client",
	"broker/controller",
	"broker/replication",
	"broker/metrics",
}

// forbiddenImports may not be imported by node code at all.
var forbiddenImports = map[string]string{
	"os":          "files and process state come through node.Env",
	"os/exec":     "node code starts no processes",
	"os/signal":   "node code handles no signals",
	"net":         "sockets come through node.Env",
	"net/http":    "sockets come through node.Env",
	"syscall":     "node code makes no system calls",
	"crypto/rand": "randomness comes from node.Env.Rand",
	"runtime":     "node code does not depend on the scheduler",
	"unsafe":      "node code stays memory safe",
}

// forbiddenTime are functions of package time that read the wall clock or start timers.
var forbiddenTime = map[string]bool{
	"Now": true, "Sleep": true, "After": true, "AfterFunc": true, "Tick": true,
	"NewTimer": true, "NewTicker": true, "Since": true, "Until": true,
}

// allowedRand are the package-level names of math/rand(/v2) that create a seeded generator
// rather than use the global one.
var allowedRand = map[string]bool{"New": true, "NewPCG": true, "NewChaCha8": true, "NewSource": true, "NewZipf": true}

type finding struct {
	pos token.Position
	msg string
}

// checkFile reports nondeterminism in one parsed file.
func checkFile(fset *token.FileSet, f *ast.File) []finding {
	var out []finding
	imports := map[string]string{} // local name -> path
	for _, imp := range f.Imports {
		path, _ := strconv.Unquote(imp.Path.Value)
		name := path[strings.LastIndex(path, "/")+1:]
		if path == "math/rand/v2" {
			name = "rand"
		}
		if imp.Name != nil {
			name = imp.Name.Name
		}
		imports[name] = path
		if why, bad := forbiddenImports[path]; bad {
			out = append(out, finding{fset.Position(imp.Pos()), "imports " + path + ": " + why})
		}
	}
	ast.Inspect(f, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.GoStmt:
			out = append(out, finding{fset.Position(n.Pos()), "starts a goroutine: node code is driven by its runtime's events"})
		case *ast.SelectorExpr:
			id, ok := n.X.(*ast.Ident)
			if !ok || id.Obj != nil { // a local variable, not a package
				return true
			}
			switch imports[id.Name] {
			case "time":
				if forbiddenTime[n.Sel.Name] {
					out = append(out, finding{fset.Position(n.Pos()), "calls time." + n.Sel.Name + ": use node.Env's clock and timers"})
				}
			case "math/rand", "math/rand/v2":
				if ast.IsExported(n.Sel.Name) && !allowedRand[n.Sel.Name] && !isRandType(n.Sel.Name) {
					out = append(out, finding{fset.Position(n.Pos()), "uses the global " + imports[id.Name] + "." + n.Sel.Name + ": use node.Env.Rand"})
				}
			}
		}
		return true
	})
	return out
}

func isRandType(name string) bool {
	switch name {
	case "Rand", "Source", "PCG", "ChaCha8", "Zipf":
		return true
	}
	return false
}

func repoRoot(t *testing.T) string {
	dir, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found above the test directory")
		}
		dir = parent
	}
}

func TestNodeCodeIsDeterministic(t *testing.T) {
	root := repoRoot(t)
	files := 0
	for _, pkg := range nodePackages {
		dir := filepath.Join(root, pkg)
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatalf("node package %s: %v", pkg, err)
		}
		for _, e := range entries {
			name := e.Name()
			if e.IsDir() || !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
				continue
			}
			fset := token.NewFileSet()
			f, err := parser.ParseFile(fset, filepath.Join(dir, name), nil, parser.SkipObjectResolution|parser.ParseComments)
			if err != nil {
				t.Fatalf("parse %s/%s: %v", pkg, name, err)
			}
			files++
			for _, fd := range checkFile(fset, f) {
				t.Errorf("%s:%d: %s", filepath.Join(pkg, name), fd.pos.Line, fd.msg)
			}
		}
	}
	if files < len(nodePackages) {
		t.Fatalf("checked only %d files in %d node packages", files, len(nodePackages))
	}
}

// The checker itself must catch what it claims to catch.
func TestPurityCheckerCatchesViolations(t *testing.T) {
	src := `package bad
import (
	"math/rand"
	"net"
	"os"
	"time"
)
func f() {
	go func() {}()
	_ = time.Now()
	time.Sleep(1)
	<-time.After(1)
	_ = rand.Intn(3)
	_ = rand.New(rand.NewSource(1)) // allowed: a seeded generator
	_, _ = net.Dial("tcp", "x")
	_, _ = os.Open("x")
	var d time.Duration // allowed: a type
	_ = d
}
`
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "bad.go", src, parser.SkipObjectResolution)
	if err != nil {
		t.Fatal(err)
	}
	got := checkFile(fset, f)
	want := []string{"imports net", "imports os", "starts a goroutine", "time.Now", "time.Sleep", "time.After", "math/rand.Intn"}
	for _, w := range want {
		found := false
		for _, g := range got {
			if strings.Contains(g.msg, w) {
				found = true
			}
		}
		if !found {
			t.Errorf("checker missed %q; it reported %v", w, got)
		}
	}
	if len(got) != len(want) {
		t.Errorf("checker reported %d findings, want %d: %v", len(got), len(want), got)
	}
}

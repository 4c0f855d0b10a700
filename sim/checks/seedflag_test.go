package checks

// go test ./sim/... -run TestSeed -seed N hands TestSeed's flags to this package's tests too.
import _ "github.com/sluicemq/sluice/sim/internal/seedflag"

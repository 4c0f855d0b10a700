//go:build !unix

package cluster

import "time"

// processCPU is not measured here: the benchmarks report wall-time figures only.
func processCPU() time.Duration { return 0 }

package main

import (
	"fmt"
	"strconv"
	"strings"
)

// parseByteSize reads a size in bytes: a plain number, or a number with one of the suffixes
// KiB, MiB, GiB (powers of 1024) or KB, MB, GB (powers of 1000), as in "64MiB".
func parseByteSize(s string) (uint64, error) {
	units := []struct {
		suffix string
		mult   uint64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"B", 1}}
	num, mult := strings.TrimSpace(s), uint64(1)
	for _, u := range units {
		if strings.HasSuffix(num, u.suffix) {
			num, mult = strings.TrimSpace(strings.TrimSuffix(num, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseFloat(num, 64)
	if err != nil || n < 0 || n*float64(mult) >= 1<<63 {
		return 0, fmt.Errorf("%q is not a size in bytes (a number, optionally with KiB, MiB, GiB, KB, MB or GB)", s)
	}
	return uint64(n * float64(mult)), nil
}

// parseHours reads a deleteWhen list: hours 0-23 separated by ';' or ',' (RocketMQ writes
// "04" or "04;16").
func parseHours(s string) ([]int, error) {
	var out []int
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ';' || r == ',' }) {
		h, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || h < 0 || h > 23 {
			return nil, fmt.Errorf("%q: want hours 0-23 separated by ';' or ','", s)
		}
		out = append(out, h)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%q: want at least one hour 0-23", s)
	}
	return out, nil
}

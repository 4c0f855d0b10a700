//go:build !linux

package main

// totalMemory is the machine's physical memory in bytes (0: not known).
func totalMemory() uint64 { return 0 }

package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
)

// parseFlags parses args into fs the way every sluice command does: -h prints the command's
// flags to stdout and is not an error (exit 0); a bad flag or value is one line on stderr
// naming it, and a hint where the flags are listed (exit 2), not the whole flag list. ok is
// false when the command must exit with code.
func parseFlags(fs *flag.FlagSet, args []string) (code int, ok bool) {
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	err := fs.Parse(args)
	switch {
	case err == nil:
		return 0, true
	case errors.Is(err, flag.ErrHelp):
		printFlags(os.Stdout, fs)
		return 0, false
	default:
		fmt.Fprintf(os.Stderr, "sluice %s: %v\nrun 'sluice %s -h' to list its flags\n", fs.Name(), err, fs.Name())
		return 2, false
	}
}

// printFlags writes a command's usage line and flags.
func printFlags(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprintf(w, "usage: sluice %s [flags]\n\nflags:\n", fs.Name())
	fs.SetOutput(w)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
}

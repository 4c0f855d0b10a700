// Command sluice is Sluice's one binary: a local cluster for development (dev), a name server
// (namesrv), a controller member (controller), a broker (broker), and the deterministic
// simulator (sim).
package main

import (
	"fmt"
	"log/slog"
	"os"
)

const usage = `usage: sluice <command> [flags]

commands:
  dev         a name server and a broker in one process (what 'make run' starts)
  namesrv     a name server (with --controller, also a controller member)
  controller  a controller member (a raft group of 1 or 3 that elects broker-group masters)
  broker      a broker
  probe       GET a URL (a node's /readyz) and exit 0 on a 2xx answer, for health checks
  sim         run seeded simulations of a cluster under faults and check them
  jepsen      run real processes in network namespaces under seeded faults and check them (root)
  bench       measure send and consume rates against a running cluster
  admin       RocketMQ mqadmin's commands: cluster, topics, groups, offsets, messages
  console     a web console of a running cluster: brokers, topics, consumer lag, message lookup

'sluice <command> -h' lists a command's flags.
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	if err := readPlant(); err != nil {
		fmt.Fprintf(os.Stderr, "sluice: %v\n", err)
		os.Exit(2)
	}
	var code int
	args := os.Args[2:]
	switch os.Args[1] {
	case "dev", "namesrv", "controller", "broker":
		if err := loadTestHooks(slog.New(slog.NewTextHandler(os.Stderr, nil))); err != nil {
			fmt.Fprintf(os.Stderr, "sluice: %v\n", err)
			os.Exit(2)
		}
	}
	switch os.Args[1] {
	case "dev":
		code = runDev(args)
	case "namesrv":
		code = runNamesrv(args)
	case "controller":
		code = runController(args)
	case "broker":
		code = runBroker(args)
	case "sim":
		code = runSim(args)
	case "bench":
		code = runBench(args)
	case "jepsen":
		code = runJepsen(args)
	case "admin":
		code = runAdmin(args)
	case "probe":
		code = runProbe(args)
	case "console":
		code = runConsole(args)
	case "-h", "--help", "help":
		fmt.Print(usage)
	default:
		fmt.Fprintf(os.Stderr, "sluice: unknown command %q\nrun 'sluice -h' to list the commands\n", os.Args[1])
		code = 2
	}
	os.Exit(code)
}

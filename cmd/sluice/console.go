package main

// 'sluice console': the web console (package console) of a running cluster, which it reads
// through the name servers and the admin protocol like any outside tool. 'sluice dev' serves
// one too, at --console-addr.

import (
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/sluicemq/sluice/broker/adminclient"
	"github.com/sluicemq/sluice/broker/console"
)

// defaultConsoleAddr is where 'sluice console' and 'sluice dev' serve the console.
const defaultConsoleAddr = "127.0.0.1:8080"

// consoleAddrOff turns the console of 'sluice dev' off (so does an empty --console-addr).
const consoleAddrOff = "off"

// consoleRequestTimeout bounds each admin request the console sends.
const consoleRequestTimeout = 3 * time.Second

// consoleShutdown bounds the console's stop: requests in flight and a sample under way.
const consoleShutdown = 5 * time.Second

// startConsole serves the console of the cluster behind nameServers on addr, sampling it every
// interval; the page reloads itself every refresh (0: every interval).
func startConsole(addr string, nameServers []string, controller string, interval, refresh time.Duration, logger *slog.Logger) (*console.Server, error) {
	cli := adminclient.New(nameServers, consoleRequestTimeout)
	srv, err := console.Start(addr, console.NewAdminSource(cli, controller), console.Options{
		NameServers: nameServers, Interval: interval, Refresh: refresh, Logger: logger})
	if err != nil {
		cli.Close()
		return nil, err
	}
	return srv, nil
}

func runConsole(args []string) int {
	trapStopSignals()
	fs := flag.NewFlagSet("console", flag.ContinueOnError)
	ns := fs.String("namesrv", "127.0.0.1:9876", "name server addresses, ';'-separated")
	addr := fs.String("addr", defaultConsoleAddr, "serve the console on this address")
	controller := fs.String("controller", "", "a controller member, asked for the replicated groups' master epoch and in-sync set (default: beside the first name server, its port + 2)")
	interval := fs.Duration("interval", 5*time.Second, "how often the cluster is sampled")
	refresh := fs.Duration("refresh", 0, "how often the page reloads itself (default: --interval, at least 1s)")
	level := fs.String("log-level", "info", "log level: debug, info, warn, error")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "sluice console: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if *interval < 100*time.Millisecond {
		fmt.Fprintln(os.Stderr, "sluice console: --interval must be at least 100ms")
		return 2
	}
	logger, err := newLogger(*level)
	if err != nil {
		fmt.Fprintln(os.Stderr, "sluice console:", err)
		return 2
	}
	srv, err := startConsole(*addr, strings.Split(*ns, ";"), *controller, *interval, *refresh, logger)
	if err != nil {
		fmt.Fprintln(os.Stderr, "sluice console:", err)
		return 1
	}
	fmt.Printf("sluice console: serving the console of %s at %s\n", *ns, srv.URL())
	fmt.Println("sluice console: press Ctrl-C to stop")
	defer signal.Stop(stopSignals)
	s := <-stopSignals
	logger.Info("shutting down", "signal", s.String())
	if err := srv.Close(consoleShutdown); err != nil {
		logger.Warn("console: shutdown", "err", err)
	}
	fmt.Println("sluice: stopped")
	return 0
}

// withConsole adds the console, if any, to the nodes waitForStop stops: last, so it stops
// first, before the nodes it reads.
func withConsole(nodes []stoppable, con *console.Server) []stoppable {
	if con == nil {
		return nodes
	}
	return append(nodes, stoppable{shutdown: con.Close})
}

// devConsole starts the console of 'sluice dev' on addr (off or empty: none), reading the name
// server at nsAddr; set says --console-addr was given. When the default address is taken
// (another sluice dev), the process runs without one, as it does without metrics.
func devConsole(addr string, set bool, nsAddr string, logger *slog.Logger) (*console.Server, error) {
	if addr == "" || addr == consoleAddrOff {
		return nil, nil
	}
	srv, err := startConsole(addr, []string{nsAddr}, "", 5*time.Second, 0, logger)
	if err != nil && !set {
		logger.Warn("no web console: its default address is taken (set --console-addr)", "err", err)
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%w (--console-addr off turns the console off)", err)
	}
	fmt.Printf("sluice dev: web console at %s\n", srv.URL())
	return srv, nil
}

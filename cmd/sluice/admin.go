package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/sluicemq/sluice/broker/acl"
	"github.com/sluicemq/sluice/broker/adminclient"
)

// adminCommand is one 'sluice admin' command, under the name RocketMQ's mqadmin gives it.
type adminCommand struct {
	name    string   // mqadmin's spelling, e.g. "topicStatus"
	aliases []string // earlier Sluice spellings, e.g. "topic list"
	args    string   // the positional arguments, as the usage shows them: "<topic>"
	nargs   int      // how many positional arguments it takes; -1: any number
	summary string   // what it does, for the usage
	// setup declares the command's own flags on fs and returns its body, which reads them.
	setup func(fs *flag.FlagSet) adminRun
}

// adminRun is a command's body. It returns what to print (nil: nothing) and an error: a
// usageError exits 2, errNoneFound exits 1 quietly (the output said so), any other exits 1
// with the error on stderr. Output is printed even when an error comes with it.
type adminRun func(e *adminEnv, pos []string) (adminOutput, error)

// adminEnv is what every command runs with.
type adminEnv struct {
	cli     *adminclient.Client
	timeout time.Duration
	stderr  io.Writer // for warnings next to the output (records that did not decode...)
}

// adminOutput is a command's result: text (usually a table) for people, and its JSON encoding
// (of the value itself, so give its fields json tags) under --json.
type adminOutput interface {
	writeText(w io.Writer)
}

// usageError is bad command-line input, found before anything is dialled.
type usageError string

func (e usageError) Error() string { return string(e) }

// errNoneFound exits 1 without a message: the output already says nothing was found.
var errNoneFound = errors.New("nothing found")

// adminCommands are the commands of 'sluice admin', in the order its usage lists them.
var adminCommands = []adminCommand{
	clusterListCmd,
	topicListCmd,
	topicRouteCmd,
	updateTopicCmd,
	deleteTopicCmd,
	queryMsgByIdCmd,
	queryMsgByKeyCmd,
	queryMsgByOffsetCmd,
	sendMessageCmd,
	consumeMessageCmd,
	queryMsgTraceByIdCmd,
	consumerConnectionCmd,
	producerConnectionCmd,
	resetOffsetByTimeCmd,
	getControllerMetaDataCmd,
	getSyncStateSetCmd,
	brokerStatusCmd,
	topicStatusCmd,
	consumerProgressCmd,
	updateSubGroupCmd,
	deleteSubGroupCmd,
	getBrokerConfigCmd,
	updateBrokerConfigCmd,
}

// findAdminCommand finds the command that words start with: its name (any letter case) as the
// first word, or an alias of two words. n is how many words named it.
func findAdminCommand(words []string) (cmd *adminCommand, n int) {
	for i := range adminCommands {
		c := &adminCommands[i]
		if len(words) >= 1 && strings.EqualFold(words[0], c.name) {
			return c, 1
		}
		for _, a := range c.aliases {
			if len(words) >= 2 && words[0]+" "+words[1] == a {
				return c, 2
			}
		}
	}
	return nil, 0
}

// addGlobalFlags declares the flags every command takes.
func addGlobalFlags(fs *flag.FlagSet) (ns *string, timeout *time.Duration, asJSON, useTLS *bool) {
	ns = fs.String("namesrv", "127.0.0.1:9876", "name server addresses, ';'-separated")
	fs.StringVar(ns, "n", "127.0.0.1:9876", "name server addresses (mqadmin's -n)")
	timeout = fs.Duration("timeout", 5*time.Second, "timeout of each request")
	asJSON = fs.Bool("json", false, "print JSON instead of text")
	useTLS = fs.Bool("tls", false, "dial the cluster with TLS (its ports enforce it)")
	return ns, timeout, asJSON, useTLS
}

// addACLFlags declares the flags that sign every request with an ACL account (a cluster with
// aclEnable=true, docs/security.md).
func addACLFlags(fs *flag.FlagSet) (accessKey, secretKey *string) {
	accessKey = fs.String("access-key", "", "sign requests as this ACL account (admin commands need an admin account)")
	secretKey = fs.String("secret-key", "", "the secret key of --access-key")
	return accessKey, secretKey
}

// commandWords are the arguments that are not global flags or their values, in order: the
// words that name the command come first among them.
func commandWords(args []string) []string {
	var words []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") || a == "-" {
			words = append(words, a)
			continue
		}
		name, _, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !hasValue && (name == "namesrv" || name == "n" || name == "timeout" || name == "access-key" || name == "secret-key") {
			i++
		}
	}
	return words
}

// withoutWords is args with the first n of the command words removed.
func withoutWords(args []string, words []string, n int) []string {
	out := make([]string, 0, len(args))
	for _, a := range args {
		if n > 0 && a == words[0] {
			words, n = words[1:], n-1
			continue
		}
		out = append(out, a)
	}
	return out
}

// runAdmin is 'sluice admin': RocketMQ's mqadmin commands against a running cluster.
func runAdmin(args []string) int {
	return adminMain(args, os.Stdout, os.Stderr)
}

func adminMain(args []string, stdout, stderr io.Writer) int {
	words := commandWords(args)
	if len(words) == 0 || words[0] == "help" {
		if hasHelpFlag(args) || len(words) > 0 {
			adminUsage(stdout)
			return 0
		}
		adminUsage(stderr)
		return 2
	}
	cmd, n := findAdminCommand(words)
	if cmd == nil {
		fmt.Fprintf(stderr, "sluice admin: unknown command %q\nrun 'sluice admin -h' for its commands and flags\n", strings.Join(words[:min(2, len(words))], " "))
		return 2
	}
	fs := flag.NewFlagSet("admin "+cmd.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	ns, timeout, asJSON, useTLS := addGlobalFlags(fs)
	accessKey, secretKey := addACLFlags(fs)
	run := cmd.setup(fs)
	pos, err := parseInterspersed(fs, withoutWords(args, words, n))
	if errors.Is(err, flag.ErrHelp) {
		commandUsage(stdout, cmd, fs)
		return 0
	}
	if err == nil && cmd.nargs >= 0 && len(pos) != cmd.nargs {
		err = fmt.Errorf("want %d argument(s) %s, got %d", cmd.nargs, cmd.args, len(pos))
	}
	if err != nil {
		fmt.Fprintf(stderr, "sluice admin %s: %v\nrun 'sluice admin %s -h' for its flags\n", cmd.name, err, cmd.name)
		return 2
	}
	if (*accessKey == "") != (*secretKey == "") {
		fmt.Fprintf(stderr, "sluice admin %s: --access-key and --secret-key go together\n", cmd.name)
		return 2
	}
	cli := adminclient.New(strings.Split(*ns, ";"), *timeout)
	if *useTLS {
		cli.WithTLS()
	}
	if *accessKey != "" {
		cli.SetSigner(acl.Credentials{AccessKey: *accessKey, SecretKey: *secretKey}.Sign)
	}
	defer cli.Close()
	out, err := run(&adminEnv{cli: cli, timeout: *timeout, stderr: stderr}, pos)
	var usage usageError
	if errors.As(err, &usage) {
		fmt.Fprintf(stderr, "sluice admin %s: %v\nrun 'sluice admin %s -h' for its flags\n", cmd.name, err, cmd.name)
		return 2
	}
	if out != nil {
		if *asJSON {
			b, jerr := json.MarshalIndent(out, "", "  ")
			if jerr != nil {
				fmt.Fprintf(stderr, "sluice admin %s: encode JSON: %v\n", cmd.name, jerr)
				return 1
			}
			fmt.Fprintf(stdout, "%s\n", b)
		} else {
			out.writeText(stdout)
		}
	}
	switch {
	case errors.Is(err, errNoneFound):
		return 1
	case err != nil:
		fmt.Fprintf(stderr, "sluice admin %s: %v\n", cmd.name, err)
		return 1
	}
	return 0
}

func hasHelpFlag(args []string) bool {
	for _, a := range args {
		if a == "-h" || a == "--h" || a == "-help" || a == "--help" {
			return true
		}
	}
	return false
}

// adminUsage lists the commands.
func adminUsage(w io.Writer) {
	fmt.Fprint(w, "usage: sluice admin <command> [flags] [args]   (RocketMQ mqadmin's command names)\n\ncommands:\n")
	// Each command on its line, its summary under it: one column of names and arguments as
	// wide as the longest would leave the summaries no room.
	for _, c := range adminCommands {
		also := ""
		if len(c.aliases) > 0 {
			also = " (also: " + strings.Join(c.aliases, ", ") + ")"
		}
		fmt.Fprintf(w, "  %s\n", strings.TrimSpace(c.name+" "+c.args))
		for _, l := range wrapWords(c.summary+also, 90) {
			fmt.Fprintf(w, "      %s\n", l)
		}
	}
	fmt.Fprint(w, `
flags every command takes:
  --namesrv, -n ADDR[;ADDR]   name server addresses (default 127.0.0.1:9876)
  --timeout D                 timeout of each request (default 5s)
  --json                      print the result as JSON, for scripts
  --tls                       dial the cluster with TLS (when its ports enforce it)
  --access-key AK             sign requests as this ACL account (a cluster with aclEnable=true;
  --secret-key SK             admin commands need an admin account), with its secret key

run 'sluice admin <command> -h' for a command's own flags
`)
}

// wrapWords breaks s into lines of at most width bytes at spaces (a longer word has a line of
// its own).
func wrapWords(s string, width int) []string {
	var lines []string
	line := ""
	for _, word := range strings.Fields(s) {
		if line != "" && len(line)+1+len(word) > width {
			lines = append(lines, line)
			line = ""
		}
		if line != "" {
			line += " "
		}
		line += word
	}
	if line != "" {
		lines = append(lines, line)
	}
	return lines
}

// commandUsage describes one command and its flags.
func commandUsage(w io.Writer, c *adminCommand, fs *flag.FlagSet) {
	fmt.Fprintf(w, "usage: sluice admin %s [flags] %s\n\n%s\n\nflags:\n", c.name, c.args, c.summary)
	fs.SetOutput(w)
	fs.PrintDefaults()
}

// parseInterspersed parses flags wherever they appear among the positional arguments.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// table is the usual text output: a header row and rows of cells, aligned in columns.
type table struct {
	header []string
	rows   [][]string
}

func (t *table) add(cells ...any) {
	row := make([]string, len(cells))
	for i, c := range cells {
		row[i] = fmt.Sprint(c)
	}
	t.rows = append(t.rows, row)
}

func (t *table) write(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(t.header, "\t"))
	for _, r := range t.rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	tw.Flush()
}

// stringFlag declares a string flag under its long name and mqadmin's short letter for it.
func stringFlag(fs *flag.FlagSet, long, short, usage string) *string {
	p := fs.String(long, "", usage)
	fs.StringVar(p, short, "", usage+" (mqadmin's -"+short+")")
	return p
}

// Command veil is the Veil privacy gateway: one binary for the server and
// for every operator, integrator and auditor command.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"unicode"

	"github.com/veilhq/veil"
	"github.com/veilhq/veil/ats"
	"github.com/veilhq/veil/audit"
)

// errUsage marks a usage error (exit 2); the message was printed already.
var errUsage = errors.New("usage")

// errHelp marks a help request that was answered (exit 0).
var errHelp = errors.New("help")

// command is one command, or a group of them.
type command struct {
	name  string // as typed after "veil", e.g. "audit export"
	args  string // the arguments after the name, e.g. "[--dry-run]"
	about string // what it does, one paragraph
	run   func(ctx context.Context, c *command, args []string, stdout, stderr io.Writer) error
	sub   []*command // a group's commands
}

var commands = []*command{
	{name: "serve", about: "Run the gateway: receive webhooks, decide, deliver, answer lookups, serve the console.", run: runServe},
	{name: "send", args: "--source NAME [--url URL] FILE", about: "Sign FILE exactly as that source's vendor would and POST it to Veil: the ATS in one command.", run: runSend},
	{name: "sink", args: "[--listen ADDR] [--secret whsec_…]", about: "A local destination that prints each delivery (headers and body) and checks its Standard Webhooks signature.", run: runSink},
	{name: "policy", about: "Test, preview and compare the Rego policies that decide what each destination sees.", sub: []*command{
		{name: "policy test", args: "[-v] [--coverage] [DIR]", about: "Type-check the policies of DIR (default: the config's policy folder) against the normal form, check that their keep paths and categories exist, run their Rego tests with OPA's tester and name destination packages without tests; exit 1 when a check or a test fails.", run: runPolicyTest},
		{name: "policy check", args: "[DIR]", about: "Load the policies of DIR (default: the config's policy folder) exactly as serve would before it runs them: compiled against the allowed built-ins, type-checked, tested, and every destination's package defined; exit 1 naming the file and line of what fails.", run: runPolicyCheck},
		{name: "policy capabilities", about: "Print the OPA capabilities file Veil's policies compile against (no network, runtime, clock or random built-ins), for opa check --capabilities.", run: runPolicyCapabilities},
		{name: "policy fmt", args: "[--check] [DIR]", about: "Format the policy files with OPA's formatter; with --check, list those that are not formatted and exit 1.", run: runPolicyFmt},
		{name: "policy schema", args: "[--table]", about: "Print the JSON Schema of the normal form (veil.event/v1), each field with its data category; --table prints path and category only.", run: runPolicySchema},
		{name: "policy preview", args: "--destination NAME [--source NAME] [--policies DIR] FILE", about: "Show what one destination would receive for the payload in FILE: the outbound body, or why it is filtered or blocked, with the kept, pseudonymised and dropped paths.", run: runPolicyPreview},
		{name: "policy reload", args: "[--url URL]", about: "Load the policy folder into the running server now, audited as the person of VEIL_TOKEN (four-eyes review bars whoever last changed a destination's policy from approving its deliveries).", run: runPolicyReload},
		{name: "policy diff", args: "--policies NEW_DIR [--samples DIR]", about: "Per destination, the fields that would newly leave or stop leaving under the policies in NEW_DIR, over the events in the vault or the sample files in DIR.", run: runPolicyDiff},
	}},
	{name: "dlq", about: "The dead-letter inbox, through the running server's admin API.", sub: []*command{
		{name: "dlq list", args: "[--destination D] [--reason R] [--http-status N] [--since T] [--until T] [--url URL]", about: "List the dead deliveries the filters match (the 1000 most recent) and count them all.", run: runDLQList},
		{name: "dlq replay", args: "ID… | --all [--destination D] [--reason R] [--http-status N] [--since T] [--until T] [--url URL]", about: "Run the current policy again on the stored payload of dead deliveries (named, or all the filters match) and queue them under their own webhook-id.", run: runDLQReplay},
	}},
	{name: "review", about: "The human review queue of destinations with review: true, through the running server's admin API (as the person of VEIL_TOKEN, else the config's break-glass admin token).", sub: []*command{
		{name: "review list", args: "[--url URL]", about: "List the deliveries held for review, each with the minimised body it would send, the categories it would release and who approved it so far.", run: runReviewList},
		{name: "review show", args: "ID [--url URL]", about: "Print one held delivery: its minimised body, categories and approvals.", run: runReviewShow},
		{name: "review approve", args: "ID [--url URL]", about: "Approve a held delivery: it is sent.", run: runReviewApprove},
		{name: "review reject", args: "ID --reason R [--url URL]", about: "Reject a held delivery: it is never sent; the reason goes into the audit row.", run: runReviewReject},
	}},
	{name: "audit", about: "The hash-chained audit log: export, verify, retention.", sub: []*command{
		{name: "audit export", args: "[--format csv|jsonl] [--since T] [--until T] [--destination D[,D…]] [--action A[,A…]] [--subject REF] [--out FILE]", about: "Stream audit rows as CSV or JSONL.", run: runAuditExport},
		{name: "audit verify", args: "[--filtered] [FILE]", about: "Verify the hash chain of the database, or of an exported JSONL or CSV file. A filtered export is not one chain: with --filtered each row's own hash is verified.", run: runAuditVerify},
		{name: "audit verify-receipt", args: "FILE [--public-key KEY]", about: "Check the Ed25519 signature of an erasure receipt with Veil's public receipt key (veil receipt key, GET /v1/receipts/key); no secret is needed. Without --public-key the config's store gives the key.", run: runAuditVerifyReceipt},
		{name: "audit purge", args: "[--dry-run]", about: "Apply retention now: payloads past retention.payload, audit rows past retention.audit (serve also does it on a timer).", run: runAuditPurge},
	}},
	{name: "erase", args: "--subject SOURCE:candidate:ID [--receipt FILE]", about: "Erase the person a reference belongs to (GDPR Art. 17): the data keys of every record linked to her are deleted, so each stored payload and outbound body becomes unreadable; waiting deliveries are cancelled; a tombstone refuses her later events. A reference Veil holds nothing about is refused (exit 1), a malformed one too (exit 2); a person erased before gets her first receipt.", run: runErase},
	{name: "subject", about: "Data subjects: lift an erasure.", sub: []*command{
		{name: "subject restore", args: "REF --reason R", about: "Lift the erasure of the person REF belongs to, when she comes back with new consent: her later events are stored and delivered again (what was erased stays unreadable; her pseudonyms are new). Audited with the reason.", run: runSubjectRestore},
	}},
	{name: "receipt", about: "Erasure receipts.", sub: []*command{
		{name: "receipt key", about: "Print the Ed25519 public key erasure receipts are signed with (base64), for veil audit verify-receipt --public-key.", run: runReceiptKey},
	}},
	{name: "destination", about: "Destinations, through the running server's admin API: pause one (its deliveries wait) and resume it.", sub: []*command{
		{name: "destination list", args: "[--url URL]", about: "List the destinations and which are paused, by whom and why.", run: runDestination("")},
		{name: "destination pause", args: "NAME --reason R [--url URL]", about: "Hold a destination's deliveries back, on every replica, until it is resumed (audited).", run: runDestination("pause")},
		{name: "destination resume", args: "NAME [--url URL]", about: "Let a paused destination's deliveries go (audited).", run: runDestination("resume")},
	}},
	{name: "consumer", about: "Lookup consumers: who may fetch records through the gated lookup, for which purposes.", sub: []*command{
		{name: "consumer add", args: "NAME --purpose P[,P…]", about: "Grant a consumer purposes and print its key once (Veil keeps only its hash).", run: runConsumerAdd},
		{name: "consumer list", about: "List consumers, live and revoked.", run: runConsumerList},
		{name: "consumer revoke", args: "NAME", about: "Stop a consumer's key from working, at once.", run: runConsumerRevoke},
	}},
	{name: "user", about: "Local users of the console, for installations without single sign-on (opens the store directly).", sub: []*command{
		{name: "user add", args: "NAME --role R[,R…]", about: "Add a user (an email address or a name) with roles admin, reviewer, privacy, auditor, and print a one-time password: the first login must choose another. Passwords are kept as argon2id hashes.", run: runUserAdd},
		{name: "user list", about: "List the local users, their roles, and who is locked out.", run: runUserList},
		{name: "user reset", args: "NAME", about: "Unlock a user and print a new one-time password.", run: runUserReset},
		{name: "user remove", args: "NAME", about: "Remove a user and end her sessions.", run: runUserRemove},
	}},
	{name: "token", about: "API tokens of people and services (opens the store directly); the config's admin and auditor tokens stay as break-glass.", sub: []*command{
		{name: "token create", args: "--name NAME --role R[,R…] [--expires 90d]", about: "Create a token and print its secret once (Veil keeps a keyed hash). Each use is audited as token:NAME.", run: runTokenCreate},
		{name: "token list", about: "List the tokens: live, expired or revoked, with roles, expiry and last use.", run: runTokenList},
		{name: "token revoke", args: "NAME", about: "Revoke a token: refused at once, on every replica.", run: runTokenRevoke},
	}},
	{name: "report", about: "Reports for the data protection officer.", sub: []*command{
		{name: "report subject", args: "REF [--format md|html|json] [--copy FILE]", about: "The access report (GDPR Art. 15) of the person REF belongs to: purposes, categories, recipients, what Veil holds and until when, her rights, the source, automated decisions, and every transfer and lookup; --copy writes the copy of her data Veil holds (Art. 15(3)) to FILE.", run: runReportSubject},
		{name: "report processing", args: "[--format md|json] [--samples DIR]", about: "The records of processing (GDPR Art. 30), per destination: recipient, purpose, legal basis, fields, retention.", run: runReportProcessing},
	}},
	{name: "source", about: "The ATS sources and their APIs.", sub: []*command{
		{name: "source check", args: "NAME", about: "Make one authenticated call to the source's ATS API (the first page of applications) and print what Veil can see: whether the credentials and permissions work (a refusal names the missing permission), how many records the page held, the API's rate-limit headers, the token's scopes, and what the API leaves out (confidential records). Nothing is stored; no record value is printed.", run: runSourceCheck},
	}},
	{name: "reconcile", about: "Reconciliation: poll the ATS API for changes no webhook brought.", sub: []*command{
		{name: "reconcile run", args: "--source NAME [--since T] [--dry-run]", about: "Run one reconciliation pass of a source now (serve runs them every reconcile.every): list the applications changed since the watermark minus overlap, and send each change no webhook brought through the policies.", run: runReconcileRun},
	}},
	{name: "migrate", about: "Apply the store's numbered migrations (serve also does it at start) and print the schema version.", run: runMigrate},
	{name: "store", about: "Move a deployment between stores.", sub: []*command{
		{name: "store copy", args: "--to DSN", about: "Copy the config's SQLite store (events, keys, deliveries, consumers, the audit chain and its anchor) into a new PostgreSQL database and verify the copy. Stop serve first.", run: runStoreCopy},
	}},
	{name: "version", about: "Print Veil's version, commit, Go version and OPA version.", run: runVersion},
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// run executes one command and returns the exit code: 0 success, 1
// failure, 2 usage error.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, overview())
		return 2
	}
	switch args[0] {
	case "help", "-h", "--help":
		fmt.Fprint(stdout, overview())
		return 0
	case "--version", "-version":
		args = []string{"version"}
	}
	c, rest := find(commands, args)
	if c == nil {
		fmt.Fprintf(stderr, "veil: %q is not a command.\n\n%s", args[0], overview())
		return 2
	}
	if c.sub != nil {
		switch {
		case len(rest) > 0 && isHelp(rest[0]):
			fmt.Fprint(stdout, groupHelp(c))
			return 0
		case len(rest) > 0:
			fmt.Fprintf(stderr, "veil %s: %q is not one of its commands.\n\n%s", c.name, rest[0], groupHelp(c))
		default:
			fmt.Fprint(stderr, groupHelp(c))
		}
		return 2
	}
	err := c.run(ctx, c, rest, stdout, stderr)
	switch {
	case err == nil, errors.Is(err, errHelp):
		return 0
	case errors.Is(err, errUsage):
		return 2
	default:
		fmt.Fprintf(stderr, "veil %s: %v\n", c.name, err)
		return 1
	}
}

// find returns the command args name and the arguments after its name.
func find(cs []*command, args []string) (*command, []string) {
	for _, c := range cs {
		if c.name == args[0] {
			if c.sub != nil && len(args) > 1 {
				if sub, rest := find(c.sub, append([]string{c.name + " " + args[1]}, args[2:]...)); sub != nil {
					return sub, rest
				}
			}
			return c, args[1:]
		}
	}
	return nil, nil
}

func isHelp(a string) bool { return a == "-h" || a == "--help" || a == "help" || a == "-help" }

func overview() string {
	var lines []*command
	for _, c := range commands {
		if c.sub == nil {
			lines = append(lines, c)
		}
		lines = append(lines, c.sub...)
	}
	width := 0
	for _, c := range lines {
		width = max(width, len(c.name))
	}
	var b strings.Builder
	b.WriteString("veil: a privacy gateway for recruiting webhooks.\n\nUsage: veil <command> [--config veil.yaml] [flags]\n\nCommands:\n")
	for _, c := range lines {
		fmt.Fprintf(&b, "  %-*s  %s\n", width, c.name, firstSentence(c.about))
	}
	b.WriteString("\n`veil <command> --help` describes a command, its arguments and flags.\n")
	return b.String()
}

func groupHelp(c *command) string {
	var b strings.Builder
	fmt.Fprintf(&b, "veil %s: %s\n\nCommands:\n", c.name, c.about)
	for _, s := range c.sub {
		fmt.Fprintf(&b, "  veil %s %s\n      %s\n", s.name, s.args, s.about)
	}
	fmt.Fprintf(&b, "\n`veil %s <command> --help` describes one.\n", c.name)
	return b.String()
}

// firstSentence returns s up to the first full stop that a capital letter
// follows: "GDPR Art. 15" does not end one.
func firstSentence(s string) string {
	for i := 0; ; {
		j := strings.Index(s[i:], ". ")
		if j < 0 {
			return s
		}
		i += j + 2
		if i < len(s) && unicode.IsUpper(rune(s[i])) {
			return s[:i-1]
		}
	}
}

// newFlagSet returns the command's flag set with the shared --config flag.
func (c *command) flags() (*flag.FlagSet, *string) {
	fs := flag.NewFlagSet("veil "+c.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // parse reports errors itself
	config := fs.String("config", "veil.yaml", "path of the config file")
	return fs, config
}

// parse parses args, allowing flags after positional arguments. --help
// prints the command's help on stdout (errHelp, exit 0); a bad flag prints
// the problem and the help on stderr (errUsage, exit 2).
func (c *command) parse(fs *flag.FlagSet, args []string, stdout, stderr io.Writer) ([]string, error) {
	var pos []string
	for {
		err := fs.Parse(args)
		if errors.Is(err, flag.ErrHelp) {
			c.help(fs, stdout)
			return nil, errHelp
		} else if err != nil {
			fmt.Fprintf(stderr, "veil %s: %v\n\n", c.name, err)
			c.help(fs, stderr)
			return nil, errUsage
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// usage prints what is wrong and the help on stderr: a usage error.
// onStore runs a command that takes --config and exactly n arguments
// (problem says which, when they do not match): it parses args, opens the
// config's store, runs fn on it with the arguments and closes it.
func (c *command) onStore(args []string, stdout, stderr io.Writer, n int, problem string, fn func(st *audit.Store, pos []string) error) error {
	fs, configPath := c.flags()
	pos, err := c.parse(fs, args, stdout, stderr)
	if err != nil {
		return err
	}
	if len(pos) != n {
		return c.usage(fs, stderr, problem)
	}
	_, st, err := loadStore(*configPath)
	if err != nil {
		return err
	}
	defer st.Close()
	return fn(st, pos)
}

func (c *command) usage(fs *flag.FlagSet, stderr io.Writer, problem string) error {
	fmt.Fprintf(stderr, "veil %s: %s\n\n", c.name, problem)
	c.help(fs, stderr)
	return errUsage
}

func (c *command) help(fs *flag.FlagSet, w io.Writer) {
	fmt.Fprintf(w, "Usage: veil %s %s\n\n%s\n\nFlags:\n", c.name, c.args, c.about)
	fs.SetOutput(w)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
}

// newLogger returns the JSON logger every command shares.
func newLogger(w io.Writer) *slog.Logger {
	level := slog.LevelInfo
	if os.Getenv("VEIL_LOG_LEVEL") == "debug" {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level}))
}

// loadConfig reads the config file at path, its sources checked against
// the vendors package ats implements.
func loadConfig(path string) (*veil.Config, error) { return veil.LoadConfig(path, ats.Vendors()) }

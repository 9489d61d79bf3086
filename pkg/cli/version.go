package cli

import (
	"fmt"
	"runtime/debug"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

func newVersionCmd(g *globalOptions) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the version, commit and build date",
		Long: `Print the version, commit and build date.

A release binary says what its build set. A binary built with 'go install'
or 'go build' says what Go recorded in it instead: the module version
(go install ...@vX.Y.Z), or the commit it was built from (+dirty when the
checkout had changes) and that commit's time.`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			d := g.deps
			v := binaryVersion(d.Version, d.Commit, d.Date)
			if asJSON {
				return printJSON(d.Stdout, v)
			}
			_, err := fmt.Fprintln(d.Stdout, v.line())
			return err
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON on stdout")
	return cmd
}

// VersionJSON is the output of 'ncmcp version --json': what is known of the
// binary, each field empty where nothing is.
type VersionJSON struct {
	// Version is the release version (1.2.3), or "dev" for a build of no
	// release.
	Version string `json:"version"`
	// Commit is the revision the binary was built from.
	Commit string `json:"commit"`
	// Modified tells that the checkout had changes that Commit lacks.
	Modified bool `json:"modified"`
	// BuildDate is when the binary was built (RFC 3339), where the build
	// said.
	BuildDate string `json:"build_date"`
	// CommitTime is Commit's time (RFC 3339), where Go recorded it.
	CommitTime string `json:"commit_time"`
}

// versionLine is what 'ncmcp version' and 'ncmcp --version' print.
func versionLine(version, commit, date string) string {
	return binaryVersion(version, commit, date).line()
}

// line is the version as one line: ncmcp VERSION (commit C, built DATE),
// or "committed TIME" where only the commit's time is known.
func (v VersionJSON) line() string {
	commit := orUnknown(v.Commit)
	if v.Modified {
		commit += "+dirty"
	}
	when := "built " + orUnknown(v.BuildDate)
	if v.BuildDate == "" && v.CommitTime != "" {
		when = "committed " + v.CommitTime
	}
	return fmt.Sprintf("ncmcp %s (commit %s, %s)", v.Version, commit, when)
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

// binaryVersion returns what is known of this binary: the values the
// linker set, and, for what it left unset, the build information that Go
// records. The build information is read only when a value is missing,
// so a release binary pays nothing for it.
func binaryVersion(version, commit, date string) VersionJSON {
	var bi *debug.BuildInfo
	if version == "" || version == "dev" || commit == "" || date == "" {
		bi, _ = debug.ReadBuildInfo()
	}
	return resolveVersion(bi, version, commit, date)
}

// resolveVersion returns the version fields from the linker's values
// (version "" or "dev", commit "" and date "" meaning unset) and, for each
// one unset, from the build information bi (nil when there is none):
// the module version, unless it is "(devel)" or a pseudo-version, which
// names no release; the VCS revision, modified flag and commit time that
// 'go build' records in a checkout; and where those are missing, the
// revision and time a pseudo-version carries ('go install ...@COMMIT').
func resolveVersion(bi *debug.BuildInfo, version, commit, date string) VersionJSON {
	v := VersionJSON{Version: version, Commit: commit, BuildDate: date}
	if v.Version == "" {
		v.Version = "dev"
	}
	if bi == nil {
		return v
	}
	mod := bi.Main.Version
	if v.Version == "dev" && mod != "" && mod != "(devel)" && !isPseudoVersion(mod) {
		v.Version = strings.TrimPrefix(mod, "v")
	}
	var revision, vcsTime string
	var modified bool
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			revision = s.Value
		case "vcs.time":
			vcsTime = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	if revision == "" {
		revision, vcsTime = pseudoVersionCommit(mod)
		modified = strings.HasSuffix(mod, "+dirty")
	}
	if revision == "" {
		return v
	}
	// The recorded commit describes this binary only where the linker
	// named none, or named the same one.
	switch {
	case v.Commit == "":
		v.Commit, v.Modified, v.CommitTime = revision, modified, vcsTime
	case v.Commit == revision:
		v.Modified, v.CommitTime = modified, vcsTime
	}
	return v
}

// isPseudoVersion tells whether v is a Go pseudo-version, which names a
// commit rather than a release.
func isPseudoVersion(v string) bool {
	revision, _ := pseudoVersionCommit(v)
	return revision != ""
}

// pseudoVersionCommit returns the revision (12 hex digits) and the commit
// time (RFC 3339) that the pseudo-version v names, or "", "". A
// pseudo-version ends in [-.]yyyymmddhhmmss-abcdefabcdef (vX.Y.Z-TIME-REV,
// vX.Y.Z-pre.0.TIME-REV, vX.Y.Z-0.TIME-REV), then maybe +dirty or
// +incompatible. (No regexp: compiling one would cost every command's
// start-up.)
func pseudoVersionCommit(v string) (revision, commitTime string) {
	if i := strings.IndexByte(v, '+'); i >= 0 {
		v = v[:i]
	}
	const n = len("-20060102150405-abcdefabcdef")
	if len(v) <= n {
		return "", ""
	}
	tail := v[len(v)-n:]
	stamp, rev := tail[1:15], tail[16:]
	if tail[0] != '-' && tail[0] != '.' || tail[15] != '-' || !onlyOf(stamp, "0123456789") || !onlyOf(rev, "0123456789abcdef") {
		return "", ""
	}
	t, err := time.Parse("20060102150405", stamp)
	if err != nil {
		return "", ""
	}
	return rev, t.UTC().Format(time.RFC3339)
}

// onlyOf tells whether every byte of s is in set.
func onlyOf(s, set string) bool {
	for i := 0; i < len(s); i++ {
		if strings.IndexByte(set, s[i]) < 0 {
			return false
		}
	}
	return true
}

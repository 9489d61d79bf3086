package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"runtime/debug"
	"strings"
	"testing"
)

// TestResolveVersion: the linker's values win; what it left unset comes
// from the build information Go records.
func TestResolveVersion(t *testing.T) {
	vcs := func(mod string, kv ...string) *debug.BuildInfo {
		bi := &debug.BuildInfo{Main: debug.Module{Path: "github.com/ncmcp/ncmcp", Version: mod}}
		for i := 0; i+1 < len(kv); i += 2 {
			bi.Settings = append(bi.Settings, debug.BuildSetting{Key: kv[i], Value: kv[i+1]})
		}
		return bi
	}
	const rev = "5ba70702bc49539d6582e5927781479d66e1c4ac"
	checkout := vcs("(devel)", "vcs", "git", "vcs.revision", rev, "vcs.time", "2026-12-05T02:29:42Z", "vcs.modified", "true")
	for _, tc := range []struct {
		name                  string
		bi                    *debug.BuildInfo
		version, commit, date string
		want                  VersionJSON
		line                  string
	}{
		{
			name: "release build: the linker's values, the build information unused",
			bi:   checkout, version: "1.2.3", commit: "abc", date: "2026-12-05T00:00:00Z",
			want: VersionJSON{Version: "1.2.3", Commit: "abc", BuildDate: "2026-12-05T00:00:00Z"},
			line: "ncmcp 1.2.3 (commit abc, built 2026-12-05T00:00:00Z)",
		},
		{
			name: "no build information",
			bi:   nil, version: "dev",
			want: VersionJSON{Version: "dev"},
			line: "ncmcp dev (commit unknown, built unknown)",
		},
		{
			name: "go install ...@v1.2.3: the module version",
			bi:   vcs("v1.2.3"), version: "dev",
			want: VersionJSON{Version: "1.2.3"},
			line: "ncmcp 1.2.3 (commit unknown, built unknown)",
		},
		{
			name: "go build in a modified checkout: the revision, +dirty, its time",
			bi:   checkout, version: "dev",
			want: VersionJSON{Version: "dev", Commit: rev, Modified: true, CommitTime: "2026-12-05T02:29:42Z"},
			line: "ncmcp dev (commit " + rev + "+dirty, committed 2026-12-05T02:29:42Z)",
		},
		{
			name: "go build in a clean checkout, Go 1.24's pseudo-version beside the revision",
			bi:   vcs("v0.0.0-20261205022942-5ba70702bc49", "vcs.revision", rev, "vcs.time", "2026-12-05T02:29:42Z", "vcs.modified", "false"),
			want: VersionJSON{Version: "dev", Commit: rev, CommitTime: "2026-12-05T02:29:42Z"},
			line: "ncmcp dev (commit " + rev + ", committed 2026-12-05T02:29:42Z)",
		},
		{
			name: "go build at a tag",
			bi:   vcs("v1.4.0", "vcs.revision", rev, "vcs.time", "2026-12-05T02:29:42Z", "vcs.modified", "false"),
			want: VersionJSON{Version: "1.4.0", Commit: rev, CommitTime: "2026-12-05T02:29:42Z"},
			line: "ncmcp 1.4.0 (commit " + rev + ", committed 2026-12-05T02:29:42Z)",
		},
		{
			name: "go install ...@COMMIT: the revision and time of the pseudo-version",
			bi:   vcs("v0.0.0-20261205022942-5ba70702bc49"), version: "",
			want: VersionJSON{Version: "dev", Commit: "5ba70702bc49", CommitTime: "2026-12-05T02:29:42Z"},
			line: "ncmcp dev (commit 5ba70702bc49, committed 2026-12-05T02:29:42Z)",
		},
		{
			name: "a pseudo-version after a pre-release tag",
			bi:   vcs("v1.3.0-rc.1.0.20261205022942-5ba70702bc49"), version: "dev",
			want: VersionJSON{Version: "dev", Commit: "5ba70702bc49", CommitTime: "2026-12-05T02:29:42Z"},
			line: "ncmcp dev (commit 5ba70702bc49, committed 2026-12-05T02:29:42Z)",
		},
		{
			name: "the linker named the commit only: the version from the module, the time from VCS",
			bi:   vcs("v1.2.3", "vcs.revision", rev, "vcs.time", "2026-12-05T02:29:42Z"), version: "dev", commit: rev,
			want: VersionJSON{Version: "1.2.3", Commit: rev, CommitTime: "2026-12-05T02:29:42Z"},
			line: "ncmcp 1.2.3 (commit " + rev + ", committed 2026-12-05T02:29:42Z)",
		},
		{
			name: "the linker named another commit: VCS's is not mixed in",
			bi:   checkout, version: "dev", commit: "abc",
			want: VersionJSON{Version: "dev", Commit: "abc"},
			line: "ncmcp dev (commit abc, built unknown)",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := resolveVersion(tc.bi, tc.version, tc.commit, tc.date)
			if got != tc.want {
				t.Errorf("resolveVersion = %+v, want %+v", got, tc.want)
			}
			if line := got.line(); line != tc.line {
				t.Errorf("line = %q, want %q", line, tc.line)
			}
		})
	}
}

// TestPseudoVersionCommit: only a pseudo-version's shape gives a commit.
func TestPseudoVersionCommit(t *testing.T) {
	for v, want := range map[string]string{
		"v0.0.0-20261205022942-5ba70702bc49":              "5ba70702bc49 2026-12-05T02:29:42Z",
		"v0.0.0-20261205022942-5ba70702bc49+dirty":        "5ba70702bc49 2026-12-05T02:29:42Z",
		"v1.2.4-0.20261205022942-5ba70702bc49":            "5ba70702bc49 2026-12-05T02:29:42Z",
		"v2.0.0-20261205022942-5ba70702bc49+incompatible": "5ba70702bc49 2026-12-05T02:29:42Z",
		"v1.2.3":                             " ",
		"v1.2.3+dirty":                       " ",
		"(devel)":                            " ",
		"":                                   " ",
		"v0.0.0-20261205022942-5BA70702BC49": " ",
		"v0.0.0_20261205022942-5ba70702bc49": " ",
		"v0.0.0-20261399022942-5ba70702bc49": " ",
		"-20261205022942-5ba70702bc49":       " ",
	} {
		rev, at := pseudoVersionCommit(v)
		if got := rev + " " + at; got != want {
			t.Errorf("pseudoVersionCommit(%q) = %q, want %q", v, got, want)
		}
	}
}

// TestVersionJSON: 'ncmcp version --json' has the fields the line has, and
// 'ncmcp --version' prints the line, for this test binary too (whose
// build information has no release version).
func TestVersionJSON(t *testing.T) {
	run := func(deps Deps, args ...string) string {
		t.Helper()
		var out, errb bytes.Buffer
		deps.Stdout, deps.Stderr, deps.Stdin = &out, &errb, strings.NewReader("")
		deps.Getenv = func(string) string { return "" }
		if code := Run(context.Background(), args, deps); code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, errb.String())
		}
		return out.String()
	}
	release := Deps{Version: "1.2.3", Commit: "abc", Date: "2026-12-05T00:00:00Z"}
	var got map[string]any
	if err := json.Unmarshal([]byte(run(release, "version", "--json")), &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"version": "1.2.3", "commit": "abc", "modified": false, "build_date": "2026-12-05T00:00:00Z", "commit_time": ""}
	if len(got) != len(want) {
		t.Errorf("--json: %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("--json %s: %v, want %v", k, got[k], v)
		}
	}

	// 'ncmcp --version', which people type, prints the line 'ncmcp
	// version' prints.
	linked := Deps{Version: "1.2.3", Commit: "abc", Date: "2026-12-05"}
	if flag, cmd := run(linked, "--version"), run(linked, "version"); flag != cmd || flag != "ncmcp 1.2.3 (commit abc, built 2026-12-05)\n" {
		t.Errorf("--version: %q; version: %q", flag, cmd)
	}

	// Nothing from the linker: the line is built from this binary's own
	// build information, the same for both spellings.
	dev := run(Deps{}, "version")
	if flag := run(Deps{}, "--version"); flag != dev || !strings.HasPrefix(dev, "ncmcp ") {
		t.Errorf("version: %q; --version: %q", dev, flag)
	}
	bi, _ := debug.ReadBuildInfo()
	if line := resolveVersion(bi, "dev", "", "").line() + "\n"; dev != line {
		t.Errorf("version: %q, want %q", dev, line)
	}
}

#!/usr/bin/env bash
# Checks the package-manager manifests that 'goreleaser release' (or a
# snapshot) wrote into dist/, each read with a real parser:
#
#   homebrew/Casks/ncmcp.rb    Homebrew cask: 'ruby -c', then evaluated
#                              against a stub of the cask DSL
#   scoop/ncmcp.json           Scoop manifest: JSON
#   winget/manifests/...       winget manifests (version, installer,
#                              default locale): YAML
#
# Each one must exist, name the release's version, point at the release's
# archives (https://github.com/OWNER/NAME/releases/download/TAG/ARCHIVE,
# every archive of its platforms, no other URL) with the checksum that
# checksums.txt gives, and name files that are in those archives (the
# binary; for the cask also every man page and the bash, zsh and fish
# completions, and the hook that takes the quarantine attribute off).
# checksums.txt itself must match the files it lists. Anything that cannot be
# checked (ruby missing, a file missing) is a failure, never a skip.
#
#   scripts/check-release-manifests.sh [DIST]              # check (default: dist)
#   scripts/check-release-manifests.sh --self-test [DIST]  # and refuse altered copies
#
# --self-test runs the check on copies of DIST's manifests, each altered in
# one way a broken release would be (a checksum, a version, a URL, a
# missing file), and fails unless every one of them is refused.
set -euo pipefail

self_test=false
if [ "${1:-}" = --self-test ]; then
  self_test=true
  shift
fi
dist=${1:-dist}

if ! command -v ruby >/dev/null 2>&1; then
  echo "FAIL ruby is not installed: the manifests cannot be checked (Debian: apt-get install ruby)" >&2
  exit 1
fi

# check DIST prints a line per manifest and exits non-zero on any failure.
check() {
  local dist=$1 cask=$1/homebrew/Casks/ncmcp.rb
  if [ ! -f "$cask" ]; then
    echo "FAIL $cask: missing"
    return 1
  fi
  # Ruby's own parser, as Homebrew reads the cask.
  if ! ruby -c "$cask" >/dev/null; then
    echo "FAIL $cask: not valid Ruby (ruby -c)"
    return 1
  fi
  ruby -rjson -ryaml -rdigest - "$dist" <<'RUBY'
dist = ARGV.fetch(0)
$failures = []
def fail!(file, msg) = $failures << "FAIL #{file}: #{msg}"
def read(path)
  File.read(path)
rescue SystemCallError => e
  fail!(path, e.message)
  nil
end

# The release: version, tag and repository as GoReleaser recorded them.
meta = JSON.parse(read("#{dist}/metadata.json") || "{}")
version, tag = meta["version"], meta["tag"]
config = YAML.safe_load(read("#{dist}/config.yaml") || "{}", aliases: true) || {}
gh = (config["release"] || {})["github"] || {}
if [version, tag, gh["owner"], gh["name"]].any? { |v| v.to_s.empty? }
  puts "FAIL #{dist}: metadata.json or config.yaml lack the version, tag or release repository"
  exit 1
end
base = "https://github.com/#{gh["owner"]}/#{gh["name"]}/releases/download/#{tag}/"

# checksums.txt, which must itself match the files.
sums = {}
(read("#{dist}/checksums.txt") || "").each_line do |line|
  sum, name = line.split
  sums[name] = sum.downcase if name
end
artifacts = JSON.parse(read("#{dist}/artifacts.json") || "[]")
archives = artifacts.select { |a| a["type"] == "Archive" }
fail!("#{dist}/artifacts.json", "no archives") if archives.empty?
archives.each { |a| fail!("#{dist}/checksums.txt", "no checksum for #{a["name"]}") unless sums[a["name"]] }
sums.each do |name, sum|
  path = File.join(dist, name)
  if !File.file?(path)
    fail!(path, "missing")
  elsif Digest::SHA256.file(path).hexdigest != sum
    fail!("#{dist}/checksums.txt", "#{name}: the checksum is not the file's")
  end
end
by_platform = archives.to_h { |a| [[a["goos"], a["goarch"]], a["name"]] }

# Names of the files in a .tar.gz or .zip archive.
def tar_names(path) = IO.popen(["tar", "-tzf", path], &:read).lines.map { |l| l.chomp.delete_prefix("./") }
def zip_names(path)
  data = File.binread(path)
  eocd = data.rindex("PK\x05\x06".b) or return []
  count, offset = data[eocd + 10, 2].unpack1("v"), data[eocd + 16, 4].unpack1("V")
  names = []
  count.times do
    return names unless data[offset, 4] == "PK\x01\x02".b
    n, m, k = data[offset + 28, 6].unpack("vvv")
    names << data[offset + 46, n]
    offset += 46 + n + m + k
  end
  names
end
def names_in(dist, archive)
  path = File.join(dist, archive.to_s)
  return [] unless File.file?(path)
  archive.end_with?(".zip") ? zip_names(path) : tar_names(path)
end

# entries are [url, sha256, [goos, goarch]] as a manifest gives them; each
# must be the archive of its platform, with its checksum, and together they
# must be every archive of the platforms the manifest serves.
def check_urls(file, entries, platforms, by_platform, base, sums)
  want = by_platform.select { |(os, _), _| platforms.include?(os) }
  fail!(file, "no archives for #{platforms.join(", ")}") if want.empty?
  seen = []
  entries.each do |url, sum, platform|
    name = by_platform[platform]
    if name.nil?
      fail!(file, "#{url}: no archive for #{platform.join("/")}")
    elsif url != base + name
      fail!(file, "#{platform.join("/")}: URL #{url}, want #{base + name}")
    elsif sum.to_s.downcase != sums[name]
      fail!(file, "#{name}: checksum #{sum}, checksums.txt says #{sums[name]}")
    end
    seen << platform
  end
  missing = want.keys - seen
  fail!(file, "no entry for #{missing.map { |p| p.join("/") }.join(", ")}") unless missing.empty?
  fail!(file, "more than one entry for a platform") if seen.uniq.size != seen.size
  entries.size
end

results = []
def clean_binding = binding

# Homebrew: the cask evaluated against a stub of the cask DSL that records
# each stanza; on_macos/on_linux/on_intel/on_arm tell the platform.
class Cask
  attr_reader :token, :urls, :binaries, :manpages, :completions, :postflight_hook
  def initialize(token)
    @token, @where, @urls, @binaries, @manpages, @completions = token, {}, [], [], [], {}
  end
  def version(v = nil) = v.nil? ? @version : (@version = v)
  def on_macos(&b) = within(os: "darwin", &b)
  def on_linux(&b) = within(os: "linux", &b)
  def on_intel(&b) = within(arch: "amd64", &b)
  def on_arm(&b) = within(arch: "arm64", &b)
  def within(**w)
    outer = @where
    @where = outer.merge(w)
    yield
  ensure
    @where = outer
  end
  def url(u, **) = @urls << [u, nil, [@where[:os], @where[:arch]]]
  def sha256(s) = @urls.last[1] = s
  def binary(b, **) = @binaries << b
  def manpage(m) = @manpages << m
  def bash_completion(p) = @completions[:bash] = p
  def zsh_completion(p) = @completions[:zsh] = p
  def fish_completion(p) = @completions[:fish] = p
  def postflight(&b) = @postflight_hook = b
  def name(*) = nil
  def desc(*) = nil
  def homepage(*) = nil
  def livecheck(&) = nil
  def method_missing(name, *) = raise(NoMethodError, "stanza #{name} is not known to this check")
  def respond_to_missing?(*) = false
end
cask_file = "#{dist}/homebrew/Casks/ncmcp.rb"
if (source = read(cask_file))
  cask = nil
  Kernel.define_method(:cask) { |token, &b| cask = Cask.new(token).tap { |c| c.instance_eval(&b) } }
  begin
    eval(source, clean_binding, cask_file)
  rescue StandardError, ScriptError => e
    fail!(cask_file, "evaluating it: #{e.message}")
  end
  if cask
    fail!(cask_file, "version #{cask.version.inspect}, want #{version}") if cask.version != version
    entries = cask.urls.map { |u, s, p| [u.to_s, s, p] }
    n = check_urls(cask_file, entries, %w[darwin linux], by_platform, base, sums)
    files = names_in(dist, by_platform[["darwin", "arm64"]])
    fail!(cask_file, "no darwin/arm64 archive to look into") if files.empty?
    pages = files.grep(%r{\Aman/.*\.1\z}).sort
    fail!(cask_file, "man pages #{(pages - cask.manpages).join(", ")} not installed") unless (pages - cask.manpages).empty?
    fail!(cask_file, "no man pages") if pages.empty?
    (cask.binaries + cask.manpages + cask.completions.values).each do |f|
      fail!(cask_file, "#{f} is not in the archive") unless files.include?(f)
    end
    fail!(cask_file, "installs no binary") if cask.binaries.empty?
    fail!(cask_file, "completions #{cask.completions.keys}, want bash, zsh and fish") if cask.completions.keys.sort != %i[bash fish zsh]
    unless cask.postflight_hook && source.match?(/postflight do.*xattr.*"-dr", "com\.apple\.quarantine", "#\{staged_path\}\/ncmcp"/m)
      fail!(cask_file, "no postflight hook taking com.apple.quarantine off the binary")
    end
    results << "#{cask_file}: version #{cask.version}, #{n} archives, #{cask.manpages.size} man pages, #{cask.completions.size} completions, quarantine hook"
  end
end

# Scoop: JSON.
scoop_file = "#{dist}/scoop/ncmcp.json"
if (source = read(scoop_file))
  begin
    m = JSON.parse(source)
    fail!(scoop_file, "version #{m["version"].inspect}, want #{version}") if m["version"] != version
    arch = { "64bit" => "amd64", "arm64" => "arm64", "32bit" => "386" }
    entries = (m["architecture"] || {}).map do |k, a|
      [a["url"].to_s, a["hash"].to_s.delete_prefix("sha256:"), ["windows", arch.fetch(k, k)]]
    end
    n = check_urls(scoop_file, entries, %w[windows], by_platform, base, sums)
    (m["architecture"] || {}).each do |k, a|
      bins = Array(a["bin"])
      fail!(scoop_file, "#{k}: no bin") if bins.empty?
      files = names_in(dist, by_platform[["windows", arch.fetch(k, k)]])
      bins.each { |b| fail!(scoop_file, "#{k}: bin #{b} is not in the archive") unless files.include?(b) }
    end
    results << "#{scoop_file}: version #{m["version"]}, #{n} archives"
  rescue JSON::ParserError => e
    fail!(scoop_file, "not JSON: #{e.message}")
  end
end

# winget: YAML, the three manifests of the version's folder.
winget_dir = Dir.glob("#{dist}/winget/manifests/*/*/*/#{version}").first
if winget_dir.nil?
  fail!("#{dist}/winget", "no manifests folder for version #{version}")
else
  docs = {}
  Dir.glob("#{winget_dir}/*.yaml").sort.each do |f|
    doc = YAML.safe_load(File.read(f))
    fail!(f, "PackageVersion #{doc["PackageVersion"].inspect}, want #{version}") if doc["PackageVersion"].to_s != version
    docs[doc["ManifestType"]] = [f, doc]
  rescue Psych::Exception => e
    fail!(f, "not YAML: #{e.message}")
  end
  %w[version installer defaultLocale].each { |t| fail!(winget_dir, "no #{t} manifest") unless docs[t] }
  ids = docs.values.map { |_, d| d["PackageIdentifier"] }.uniq
  fail!(winget_dir, "PackageIdentifier differs between the manifests: #{ids}") if ids.size != 1
  if docs["installer"]
    f, doc = docs["installer"]
    arch = { "x64" => "amd64", "arm64" => "arm64", "x86" => "386" }
    installers = doc["Installers"] || []
    entries = installers.map { |i| [i["InstallerUrl"].to_s, i["InstallerSha256"], ["windows", arch.fetch(i["Architecture"], i["Architecture"])]] }
    n = check_urls(f, entries, %w[windows], by_platform, base, sums)
    installers.each do |i|
      files = names_in(dist, by_platform[["windows", arch.fetch(i["Architecture"], i["Architecture"])]])
      nested = (i["NestedInstallerFiles"] || doc["NestedInstallerFiles"] || []).map { |x| x["RelativeFilePath"] }
      fail!(f, "#{i["Architecture"]}: no nested installer file") if nested.empty?
      nested.each { |p| fail!(f, "#{i["Architecture"]}: #{p} is not in the archive") unless files.include?(p) }
    end
    results << "#{winget_dir}: #{ids.first} #{version}, #{docs.size} manifests, #{n} archives"
  end
end

results.each { |r| puts "ok   #{r}" } if $failures.empty?
puts $failures
n = $failures.size
puts "release manifests: #{n.zero? ? "3 passed, 0 failed" : "#{n} #{n == 1 ? "problem" : "problems"}"} (checksums.txt: #{sums.size} files)"
exit($failures.empty? ? 0 : 1)
RUBY
}

if ! $self_test; then
  check "$dist"
  exit
fi

# The self-test: a copy of the manifests and metadata, the archives linked.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fresh() {
  rm -rf "$work/dist"
  mkdir -p "$work/dist"
  cp -r "$dist"/homebrew "$dist"/scoop "$dist"/winget "$dist"/metadata.json "$dist"/config.yaml \
    "$dist"/artifacts.json "$dist"/checksums.txt "$work/dist/"
  local name
  while read -r _ name; do ln -s "$(cd "$dist" && pwd)/$name" "$work/dist/$name"; done <"$dist/checksums.txt"
}
fresh
if ! check "$work/dist" >/dev/null; then
  echo "FAIL the unaltered copy of $dist was refused"
  exit 1
fi
# flip_sum FILE changes the first digit of the first SHA-256 checksum in FILE.
flip_sum() {
  local sum
  sum=$(grep -m1 -oE '[0-9a-f]{64}' "$1")
  sed -i "s/$sum/$([ "${sum:0:1}" = 0 ] && echo 1 || echo 0)${sum:1}/" "$1"
}
mutations=(
  "a cask checksum|flip_sum homebrew/Casks/ncmcp.rb"
  "a Scoop checksum|flip_sum scoop/ncmcp.json"
  "a winget checksum|flip_sum winget/manifests/*/*/*/*/*.installer.yaml"
  "the cask's version|sed -i 's/^  version \"/  version \"9/' homebrew/Casks/ncmcp.rb"
  "a Scoop URL|sed -i '0,/\"url\": \"/s//\"url\": \"https:\\/\\/example.invalid\\//' scoop/ncmcp.json"
  "the winget version manifest removed|rm winget/manifests/*/*/*/*/ncmcp.ncmcp.yaml"
  "a cask man page dropped|sed -i '/manpage \"man\\/ncmcp-login.1\"/d' homebrew/Casks/ncmcp.rb"
  "the quarantine hook dropped|sed -i 's/com.apple.quarantine/com.apple.other/' homebrew/Casks/ncmcp.rb"
  "the Scoop manifest broken|sed -i '1s/^{/{,/' scoop/ncmcp.json"
  "checksums.txt altered|flip_sum checksums.txt"
)
refused=0
for m in "${mutations[@]}"; do
  what=${m%%|*}
  fresh
  (cd "$work/dist" && eval "${m#*|}")
  if out=$(check "$work/dist" 2>&1); then
    echo "FAIL the check passed with $what"
    exit 1
  fi
  # A refusal names what it found with a FAIL line; an exit without one
  # is the check crashing (a Ruby or YAML error), which proves nothing.
  if ! reason=$(grep -m1 '^FAIL' <<<"$out"); then
    echo "FAIL the check crashed with $what instead of refusing it:"
    sed "s|$work/||" <<<"$out"
    exit 1
  fi
  echo "refused: $what ($(sed "s|$work/||" <<<"$reason"))"
  refused=$((refused + 1))
done
echo "self-test: $refused alterations refused"

// Command hash-vectors prints the test vectors that test/hashing.test.ts checks
// src/session/hashing.ts against, computed by Go's standard library exactly as
// docs/design.md (differences from the reference Go package) describes the hashing:
//
//	HashRequestContent: strings.TrimSpace, then regexp `\s+` replaced by " ",
//	the first 500 bytes, then "|tools:" + the sort.Strings-sorted names joined
//	by "," when there are any; SHA-256, first 16 bytes as lowercase hex.
//	DeriveSessionID: lowercase hex SHA-256 of the message.
//
// Every input is written as pieces [JSON string literal, repeat count], so a
// 1 MB whitespace run takes a few bytes, and a piece may hold a lone surrogate
// escape such as "\ud800": Go's JSON decoding turns it into U+FFFD, as
// TextEncoder does on the JavaScript side, which is how such a string reaches
// either implementation in a request body.
//
// Usage (from the repository root): npm run vectors:hash
package main

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand"
	"os"
	"regexp"
	"sort"
	"strings"
	"unicode"
	"unicode/utf16"
)

// maxContentBytes is the reference HashRequestContent's cut.
const maxContentBytes = 500

// randomSeed fixes the random cases so regenerating reproduces the file.
const randomSeed = 20261128

// randomCases is how many seeded-random hash cases follow the hand-picked ones.
const randomCases = 600

var whitespaceRun = regexp.MustCompile(`\s+`)

func hashRequestContent(content string, toolNames []string) string {
	normalized := whitespaceRun.ReplaceAllString(strings.TrimSpace(content), " ")
	if len(normalized) > maxContentBytes {
		normalized = normalized[:maxContentBytes]
	}
	input := normalized
	if len(toolNames) > 0 {
		sorted := append([]string(nil), toolNames...)
		sort.Strings(sorted)
		input += "|tools:" + strings.Join(sorted, ",")
	}
	sum := sha256.Sum256([]byte(input))
	return hex.EncodeToString(sum[:16])
}

func deriveSessionID(message string) string {
	sum := sha256.Sum256([]byte(message))
	return hex.EncodeToString(sum[:])
}

// piece is a JSON string literal repeated n times.
type piece struct {
	lit string
	n   int
}

// asciiLiteral is s as a JSON string literal with everything outside printable
// ASCII escaped, so no invisible or look-alike character hides in the file.
func asciiLiteral(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r >= 0x20 && r < 0x7f:
			b.WriteRune(r)
		case r > 0xffff:
			hi, lo := utf16.EncodeRune(r)
			fmt.Fprintf(&b, "\\u%04x\\u%04x", hi, lo)
		default:
			fmt.Fprintf(&b, "\\u%04x", r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// p is a piece from a Go string.
func p(s string, n int) piece {
	lit := asciiLiteral(s)
	if decode(lit) != s {
		panic(fmt.Sprintf("literal %s does not round-trip", lit))
	}
	return piece{lit, n}
}

// raw is a piece from a JSON literal, for lone surrogate escapes.
func raw(lit string, n int) piece { return piece{lit, n} }

func decode(lit string) string {
	var s string
	if err := json.Unmarshal([]byte(lit), &s); err != nil {
		panic(fmt.Sprintf("bad literal %s: %v", lit, err))
	}
	return s
}

func text(pieces []piece) string {
	var b strings.Builder
	for _, pc := range pieces {
		b.WriteString(strings.Repeat(decode(pc.lit), pc.n))
	}
	return b.String()
}

func encodePieces(pieces []piece) json.RawMessage {
	parts := make([]string, len(pieces))
	for i, pc := range pieces {
		parts[i] = fmt.Sprintf("[%s,%d]", pc.lit, pc.n)
	}
	return json.RawMessage("[" + strings.Join(parts, ",") + "]")
}

type hashCase struct {
	Name    string          `json:"name"`
	Content json.RawMessage `json:"content"`
	Tools   json.RawMessage `json:"tools"`
	Hash    string          `json:"hash"`
}

type sessionIDCase struct {
	Name    string          `json:"name"`
	Message json.RawMessage `json:"message"`
	ID      string          `json:"id"`
}

// c builds a hash case; tools are JSON literals too (nil means none given).
func c(name string, pieces []piece, tools ...string) hashCase {
	names := make([]string, len(tools))
	for i, lit := range tools {
		names[i] = decode(lit)
	}
	toolsJSON := json.RawMessage("[" + strings.Join(tools, ",") + "]")
	return hashCase{name, encodePieces(pieces), toolsJSON, hashRequestContent(text(pieces), names)}
}

func one(s string) []piece { return []piece{p(s, 1)} }

func lit(s string) string { return p(s, 1).lit }

// goSpaces are the runes unicode.IsSpace accepts, so strings.TrimSpace trims them.
var goSpaces = []string{"\t", "\n", "\v", "\f", "\r", " ", "\u0085", "\u00a0", "\u1680",
	"\u2000", "\u2001", "\u2002", "\u2003", "\u2004", "\u2005", "\u2006", "\u2007", "\u2008", "\u2009", "\u200a",
	"\u2028", "\u2029", "\u202f", "\u205f", "\u3000"}

// notSpaces look like spaces but are neither trimmed nor collapsed.
var notSpaces = []string{"\ufeff", "\u200b", "\u180e", "\u2060", "\x00", "\x1c", "\x1f"}

func handPicked() []hashCase {
	cases := []hashCase{
		c("empty", nil),
		c("empty with tools", nil, lit("read_file")),
		c("empty tool name", one("x"), lit("")),
		c("two empty tool names", one("x"), lit(""), lit("")),
		c("reference vector", one("  hello   world\n\tfoo  ")),
		c("reference vector with tools", one("fix the bug"), lit("write_file"), lit("read_file")),
		c("letter s is not whitespace", one("less stress")),
		c("single space", one(" ")),
		c("all spaces", []piece{p(" ", 1000)}),
		c("all Go spaces", one(strings.Join(goSpaces, ""))),
		c("all Go spaces repeated", []piece{p(strings.Join(goSpaces, ""), 300)}),
		c("only vertical tabs", []piece{p("\v", 10)}),
		c("vertical tab trimmed at the edges", one("\v a \v")),
		c("vertical tab between spaces", one("a \v b")),
		c("vertical tabs between words", one("a\v\vb")),
		c("vertical tab runs mixing spaces", one("a \v\v  \t\v\n b")),
		c("space vertical tab space alone", one(" \v ")),
		c("CRLF and form feed", one("a\r\n\f b")),
		c("tab newline collapse", one("a\t\t\n\nb")),
		c("letters around NBSP", one("a\u00a0\u00a0b")),
		c("NBSP and NEL trimmed", one("\u00a0\u0085hi\u3000")),
		c("BOM kept at start", one("\ufeffhi")),
		c("BOM kept at end", one("hi\ufeff")),
		c("BOM between spaces", one(" \ufeff ")),
		c("spaces around BOM inside", one("a  \ufeff  b")),
		c("zero width space kept", one("\u200b a \u200b")),
		c("mongolian vowel separator kept", one("\u180ea\u180e")),
		c("NUL kept", one("\x00 a \x00")),
		c("long whitespace run 16k", []piece{p("a", 1), p(" ", 16000), p("b", 1)}),
		c("long whitespace run 64k", []piece{p("a", 1), p(" ", 64000), p("b", 1)}),
		c("long whitespace run 100k", []piece{p("a", 1), p(" ", 100000), p("b", 1)}),
		c("long whitespace run 500k", []piece{p("a", 1), p(" ", 500000), p("b", 1)}),
		c("long whitespace run 1M", []piece{p("a", 1), p(" ", 1000000), p("b", 1)}),
		c("long whitespace run 8M", []piece{p("a", 1), p(" ", 8000000), p("b", 1)}),
		c("long mixed run 100k", []piece{p("a", 1), p(" \t\n\r\f", 20000), p("b", 1)}),
		c("long vertical tab run 100k", []piece{p("a", 1), p("\v", 100000), p("b", 1)}),
		c("long vertical tab and space run", []piece{p("a", 1), p(" \v", 50000), p("b", 1)}),
		c("long NBSP run", []piece{p("a", 1), p("\u00a0", 100000), p("b", 1)}),
		c("long ideographic space run", []piece{p("a", 1), p("\u3000", 100000), p("b", 1)}),
		c("long leading run", []piece{p(" ", 100000), p("a", 1)}),
		c("long trailing run", []piece{p("a", 1), p(" ", 100000)}),
		c("long trailing Go-space run", []piece{p("a", 1), p("\u2000\v\u0085 ", 25000)}),
		c("long leading Go-space run", []piece{p("\u3000\v\u00a0\t", 25000), p("a", 1)}),
		c("long runs both ends", []piece{p(" ", 100000), p("a b", 1), p("\n", 100000)}),
		c("many short runs", []piece{p("a  ", 100000)}),
		c("many short runs of vertical tabs", []piece{p("a \v ", 50000)}),
		c("long text after a run", []piece{p("a", 1), p(" ", 100000), p("b", 100000)}),
		c("long multi-byte text", []piece{p("é", 100000)}),
		c("long astral text", []piece{p("\U0001F600", 100000)}),
		c("long CJK text with spaces", []piece{p("漢字 ", 50000)}),
		c("500 ascii", []piece{p("x", 500)}),
		c("501 ascii", []piece{p("x", 501)}),
		c("499 ascii", []piece{p("x", 499)}),
		c("cut after a collapsed run", []piece{p("x", 499), p("   ", 1), p("y", 1)}),
		c("cut at a collapsed run", []piece{p("x", 498), p("   ", 1), p("y", 5)}),
		c("run before the cut counted once", []piece{p("x", 10), p(" ", 1000), p("y", 600)}),
		c("leading run does not count toward the cut", []piece{p(" ", 1000), p("x", 600)}),
		c("trailing whitespace after 500 bytes", []piece{p("x", 500), p(" ", 10)}),
		c("trailing vertical tab past the cut", []piece{p("x", 499), p("\v", 5)}),
		c("vertical tabs inside at the cut", []piece{p("x", 498), p("\v", 5), p("y", 1)}),
	}
	// A cut inside or at the edge of every width of character.
	for _, ch := range []string{"é", "€", "\U0001F600", "\u0085", "\u3000"} {
		for pad := 495; pad <= 500; pad++ {
			cases = append(cases, c(fmt.Sprintf("cut near %U after %d bytes", []rune(ch)[0], pad), []piece{p("x", pad), p(ch, 1), p("z", 3)}))
		}
		cases = append(cases, c(fmt.Sprintf("only %U repeated", []rune(ch)[0]), []piece{p("a", 1), p(ch, 300)}))
	}
	for _, sp := range goSpaces {
		cases = append(cases,
			c(fmt.Sprintf("%U inside", []rune(sp)[0]), one("a"+sp+"b")),
			c(fmt.Sprintf("%U doubled inside", []rune(sp)[0]), one("a"+sp+sp+"b")),
			c(fmt.Sprintf("%U at both edges", []rune(sp)[0]), one(sp+"a"+sp)),
			c(fmt.Sprintf("%U beside spaces", []rune(sp)[0]), one("a "+sp+" b")),
		)
	}
	for _, ns := range notSpaces {
		cases = append(cases,
			c(fmt.Sprintf("%U at both edges", []rune(ns)[0]), one(ns+"a"+ns)),
			c(fmt.Sprintf("%U beside spaces", []rune(ns)[0]), one("a "+ns+" b")),
		)
	}
	// Lone surrogates reach both sides as U+FFFD (TextEncoder; Go's JSON decoding).
	cases = append(cases,
		c("lone high surrogate", []piece{raw(`"\ud800"`, 1)}),
		c("lone low surrogate between spaces", []piece{raw(`" \udc00 "`, 1)}),
		c("lone surrogate at the cut", []piece{p("x", 498), raw(`"\udbff"`, 1), p("y", 1)}),
		c("lone surrogate before an astral char", []piece{raw(`"\ud800\ud83d\ude00"`, 1)}),
		c("surrogate pair escape", []piece{raw(`"\ud83d\ude00 x"`, 1)}),
	)
	// Tool names: non-ASCII, UTF-8 byte order versus UTF-16 order, duplicates, separators.
	cases = append(cases,
		c("tools sorted", one("a"), lit("b"), lit("a")),
		c("tools prefix order", one("a"), lit("b"), lit("ab"), lit("a")),
		c("tools duplicate", one("a"), lit("x"), lit("x")),
		c("tools with comma and pipe", one("a"), lit("b,c"), lit("a|tools:")),
		c("tools with spaces kept", one("a"), lit(" b  c "), lit("\tz")),
		c("tools non-ASCII", one("a"), lit("é"), lit("z"), lit("ä"), lit("日本")),
		c("tools U+FFFF vs astral", one("a"), lit("\U0001F600"), lit("\uffff")),
		c("tools U+FF5E vs astral", one("a"), lit("\U0001F600"), lit("\uff5e")),
		c("tools U+E000 vs U+D7FF vs astral", one("a"), lit("\U00010000"), lit("\ue000"), lit("\ud7ff")),
		c("tools U+10FFFF", one("a"), lit("\U0010FFFF"), lit("\U00010000"), lit("\uffff")),
		c("tools uppercase before lowercase", one("a"), lit("a"), lit("B"), lit("_")),
		c("tools lone surrogate vs U+FFFE", one("a"), raw(`"\ud800"`, 1).lit, lit("\ufffe")),
		c("tools lone surrogate vs U+FFFC", one("a"), raw(`"\udfff"`, 1).lit, lit("\ufffc")),
		c("tools lone surrogate vs astral", one("a"), raw(`"x\udbff"`, 1).lit, lit("x\U0001F600")),
		c("tools with long content", []piece{p("x", 600)}, lit("t")),
		c("tools U+FEFF alone", one("x"), lit("\ufeff")),
		c("tools led by U+FEFF", one("x"), lit("\ufeffb"), lit("a")),
		c("tools led by U+FEFF vs plain", one("loop"), lit("\ufeffread_file"), lit("read_file"), lit("write_file")),
	)
	return cases
}

// Random inputs are runs of pieces from this alphabet, weighted toward
// whitespace and multi-byte characters so runs and cuts meet often. The only
// lone surrogate is a low one, so no two pieces join into a pair.
var alphabet = append(append([]string{"a", "s", "Z", "0", ".", ",", "é", "ß", "€", "漢", "\U0001F600", "\U00010000", "\uffff",
	"\ufffd", " ", " ", " ", "\t", "\n", "\r\n", "\f", "\v", "\v "}, goSpaces...), notSpaces...)

var toolAlphabet = []string{"read_file", "write_file", "a", "b", "ab", "", "é", "\uff5e", "\uffff", "\ue000",
	"\U0001F600", "\U00010000", "tool,x", "Z", "日本", "\u00a0", "\ufeff", "\ufeffa"}

func randomPieces(r *rand.Rand) []piece {
	var pieces []piece
	if r.Intn(4) == 0 {
		// Land the random tail right around the 500-byte cut.
		pieces = append(pieces, p("x", 440+r.Intn(60)))
	}
	for n := r.Intn(12); n > 0; n-- {
		if r.Intn(25) == 0 {
			pieces = append(pieces, raw(`"\udc00"`, 1+r.Intn(3)))
			continue
		}
		ch := alphabet[r.Intn(len(alphabet))]
		count := 1 + r.Intn(4)
		if r.Intn(5) == 0 {
			count = 1 + r.Intn(300)
		}
		pieces = append(pieces, p(ch, count))
	}
	return pieces
}

func randomCase(r *rand.Rand, i int) hashCase {
	pieces := randomPieces(r)
	var tools []string
	if r.Intn(3) == 0 {
		for n := 1 + r.Intn(4); n > 0; n-- {
			tools = append(tools, lit(toolAlphabet[r.Intn(len(toolAlphabet))]))
		}
	}
	return c(fmt.Sprintf("random %d", i), pieces, tools...)
}

func sessionIDCases() []sessionIDCase {
	inputs := []struct {
		name   string
		pieces []piece
	}{
		{"empty", nil},
		{"hello", one("hello")},
		{"not trimmed", one("  hello  ")},
		{"non-ASCII", one("héllo 日本 \U0001F600")},
		{"Go spaces kept", one(strings.Join(goSpaces, ""))},
		{"lone surrogate", []piece{raw(`"a\ud800b"`, 1)}},
		{"long", []piece{p("x", 100000)}},
	}
	out := make([]sessionIDCase, len(inputs))
	for i, in := range inputs {
		out[i] = sessionIDCase{in.name, encodePieces(in.pieces), deriveSessionID(text(in.pieces))}
	}
	return out
}

// writeList writes a JSON array with one element per line, so a diff of the
// vector file shows which cases changed.
func writeList(w *bufio.Writer, key string, items []interface{}, last bool) {
	fmt.Fprintf(w, " %q: [\n", key)
	for i, item := range items {
		b, err := json.Marshal(item)
		if err != nil {
			panic(err)
		}
		sep := ","
		if i == len(items)-1 {
			sep = ""
		}
		fmt.Fprintf(w, "  %s%s\n", b, sep)
	}
	if last {
		fmt.Fprint(w, " ]\n")
	} else {
		fmt.Fprint(w, " ],\n")
	}
}

// checkSpaceLists stops the generator if goSpaces is not exactly the set
// unicode.IsSpace accepts, or a notSpaces entry is one, so the per-space cases
// cover every character strings.TrimSpace trims.
func checkSpaceLists() {
	listed := map[rune]bool{}
	for _, s := range goSpaces {
		listed[[]rune(s)[0]] = true
	}
	for r := rune(0); r <= unicode.MaxRune; r++ {
		if unicode.IsSpace(r) != listed[r] {
			panic(fmt.Sprintf("goSpaces disagrees with unicode.IsSpace at %U", r))
		}
	}
	for _, s := range notSpaces {
		if unicode.IsSpace([]rune(s)[0]) {
			panic(fmt.Sprintf("notSpaces holds the space %+q", s))
		}
	}
}

func main() {
	checkSpaceLists()
	hashes := handPicked()
	r := rand.New(rand.NewSource(randomSeed))
	for i := 0; i < randomCases; i++ {
		hashes = append(hashes, randomCase(r, i))
	}
	var hashItems, idItems []interface{}
	for _, h := range hashes {
		hashItems = append(hashItems, h)
	}
	for _, s := range sessionIDCases() {
		idItems = append(idItems, s)
	}
	note, _ := json.Marshal("Generated by tools/hash-vectors (npm run vectors:hash); do not edit. Inputs are [JSON string, repeat count] pieces, concatenated.")
	w := bufio.NewWriter(os.Stdout)
	fmt.Fprintf(w, "{\n \"note\": %s,\n", note)
	writeList(w, "hash", hashItems, false)
	writeList(w, "sessionId", idItems, true)
	fmt.Fprint(w, "}\n")
	if err := w.Flush(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

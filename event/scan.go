package event

import (
	"encoding/binary"
	"math/bits"
	"unicode/utf8"
)

// scanner walks one event's JSON. Its methods return false when the input is not what the fast
// path takes, leaving the decision to the general path.
type scanner struct {
	b     []byte
	i     int
	ws    bool // whitespace met inside the value being skipped: it must be compacted
	depth int
}

// maxScanDepth bounds the nesting the fast path follows (the general path allows more).
const maxScanDepth = 64

// Kinds of bytes inside a string; plain ones need no attention.
const (
	bytePlain = iota
	byteQuote
	byteEscape
	byteControl
	byteHigh // the start of a multi-byte UTF-8 sequence, or an invalid byte
)

var stringBytes = func() (t [256]uint8) {
	for c := range 256 {
		switch {
		case c == '"':
			t[c] = byteQuote
		case c == '\\':
			t[c] = byteEscape
		case c < 0x20:
			t[c] = byteControl
		case c >= 0x80:
			t[c] = byteHigh
		}
	}
	return t
}()

const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

// firstSpecial is the index (0 to 7, in memory order) of the first of x's 8 bytes that is a
// quote, a backslash, a control character or not ASCII, or 8 if none is ("Bit Twiddling Hacks":
// hasless and haszero). Each test can flag a byte falsely only above one it flags truly (a
// borrow carries upward), so the lowest flag is exact.
func firstSpecial(x uint64) int {
	control := (x - ones*0x20) &^ x
	quote := x ^ (ones * '"')
	escape := x ^ (ones * '\\')
	return bits.TrailingZeros64((control|(quote-ones)&^quote|(escape-ones)&^escape|x)&highs) >> 3
}

// nextSpecial is the index of the first byte of b at or after i that a string's scan must look
// at (firstSpecial's kinds), or len(b). Found in the word that holds it, not byte by byte after:
// the loop over a string's last bytes was the costliest part of decoding (callgrind).
func nextSpecial(b []byte, i int) int {
	for ; i+8 <= len(b); i += 8 {
		if n := firstSpecial(binary.LittleEndian.Uint64(b[i:])); n < 8 {
			return i + n
		}
	}
	for i < len(b) && stringBytes[b[i]] == bytePlain {
		i++
	}
	return i
}

func (s *scanner) skipWS() {
	if s.i < len(s.b) && s.b[s.i] > ' ' {
		return // compact JSON: no whitespace to skip
	}
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
			s.ws = true
		default:
			return
		}
	}
}

func (s *scanner) consume(c byte) bool {
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

func (s *scanner) literal(word string) bool {
	if len(s.b)-s.i >= len(word) && string(s.b[s.i:s.i+len(word)]) == word {
		s.i += len(word)
		return true
	}
	return false
}

// str scans the string starting at s.i (its opening quote) and returns its content between the
// quotes, and whether it holds escapes.
func (s *scanner) str() (content []byte, escaped, ok bool) {
	b, i := s.b, s.i+1
	if s.i >= len(b) || b[s.i] != '"' {
		return nil, false, false
	}
	start := i
	for {
		if i = nextSpecial(b, i); i >= len(b) {
			return nil, false, false
		}
		switch stringBytes[b[i]] {
		case byteQuote:
			s.i = i + 1
			return b[start:i], escaped, true
		case byteEscape:
			escaped = true
			if i+1 >= len(b) {
				return nil, false, false
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(b) || !isHex(b[i+2]) || !isHex(b[i+3]) || !isHex(b[i+4]) || !isHex(b[i+5]) {
					return nil, false, false
				}
				i += 6
			default:
				return nil, false, false
			}
		case byteControl:
			return nil, false, false
		default:
			r, size := utf8.DecodeRune(b[i:])
			if r == utf8.RuneError && size == 1 {
				return nil, false, false
			}
			i += size
		}
	}
}

func isHex(c byte) bool { return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F' }

// plainString scans a string without escapes and returns its content.
func (s *scanner) plainString() ([]byte, bool) {
	v, escaped, ok := s.str()
	return v, ok && !escaped
}

// key scans an object's key, a string without escapes, and the colon after it, with the
// spaces around.
func (s *scanner) key() ([]byte, bool) {
	k, ok := s.plainString()
	if !ok {
		return nil, false
	}
	s.skipWS()
	if !s.consume(':') {
		return nil, false
	}
	s.skipWS()
	return k, true
}

// members scans an object's members after its opening brace, through its closing one, calling
// member after each key and its colon to scan the value; it reports false as soon as member
// does or the object is malformed.
func (s *scanner) members(member func(key []byte) bool) bool {
	s.skipWS()
	if s.consume('}') {
		return true
	}
	for {
		key, ok := s.key()
		if !ok || !member(key) {
			return false
		}
		s.skipWS()
		if s.consume('}') {
			return true
		}
		if !s.consume(',') {
			return false
		}
		s.skipWS()
	}
}

// stringOrNull scans a string without escapes, or null (null true, v nil).
func (s *scanner) stringOrNull() (v []byte, null, ok bool) {
	if s.literal("null") {
		return nil, true, true
	}
	v, ok = s.plainString()
	return v, false, ok
}

// value skips one JSON value of any type, checking it.
func (s *scanner) value() bool {
	if s.i >= len(s.b) {
		return false
	}
	switch c := s.b[s.i]; c {
	case '{', '[':
		return s.container(c)
	case '"':
		_, _, ok := s.str()
		return ok
	case 't':
		return s.literal("true")
	case 'f':
		return s.literal("false")
	case 'n':
		return s.literal("null")
	default:
		return s.number()
	}
}

// container skips an object or array, checking it.
func (s *scanner) container(open byte) bool {
	if s.depth++; s.depth > maxScanDepth {
		return false
	}
	defer func() { s.depth-- }()
	close := byte(']')
	if open == '{' {
		close = '}'
	}
	s.i++
	s.skipWS()
	if s.consume(close) {
		return true
	}
	for {
		if open == '{' {
			if _, _, ok := s.str(); !ok {
				return false
			}
			s.skipWS()
			if !s.consume(':') {
				return false
			}
			s.skipWS()
		}
		if !s.value() {
			return false
		}
		s.skipWS()
		if s.consume(close) {
			return true
		}
		if !s.consume(',') {
			return false
		}
		s.skipWS()
	}
}

// number skips a number in JSON's grammar: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (s *scanner) number() bool {
	s.consume('-')
	if s.consume('0') {
	} else if !s.digits() {
		return false
	}
	if s.consume('.') && !s.digits() {
		return false
	}
	if s.consume('e') || s.consume('E') {
		if !s.consume('+') {
			s.consume('-')
		}
		return s.digits()
	}
	return true
}

func (s *scanner) digits() bool {
	start := s.i
	for s.i < len(s.b) && '0' <= s.b[s.i] && s.b[s.i] <= '9' {
		s.i++
	}
	return s.i > start
}

// raw skips a value of the given kind ('{' or '['), checking it with check, and returns it as
// compact JSON: the input itself, or (when it holds whitespace between tokens) a compacted copy
// in *scratch.
func (s *scanner) raw(open byte, check func(*scanner, byte) bool, scratch *[]byte) ([]byte, bool) {
	if s.i >= len(s.b) || s.b[s.i] != open {
		return nil, false
	}
	start := s.i
	s.ws = false
	if !check(s, open) {
		return nil, false
	}
	v := s.b[start:s.i]
	if s.ws {
		at := len(*scratch)
		*scratch = appendCompact(*scratch, v)
		v = (*scratch)[at:]
	}
	return v, true
}

// anyRaw is raw for a value of any type.
func (s *scanner) anyRaw(scratch *[]byte) ([]byte, bool) {
	if s.i < len(s.b) && (s.b[s.i] == '{' || s.b[s.i] == '[') {
		return s.raw(s.b[s.i], (*scanner).container, scratch)
	}
	start := s.i
	if !s.value() {
		return nil, false
	}
	return s.b[start:s.i], true
}

// appendCompact appends valid JSON without the whitespace between its tokens.
func appendCompact(dst, v []byte) []byte {
	inString := false
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case inString:
			if c == '\\' {
				dst = append(dst, c)
				i++
				c = v[i]
			} else if c == '"' {
				inString = false
			}
		case c == '"':
			inString = true
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			continue
		}
		dst = append(dst, c)
	}
	return dst
}

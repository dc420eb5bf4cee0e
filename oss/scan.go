package oss

import (
	"bytes"
	"strconv"
	"unicode"
	"unicode/utf8"
)

// scanListJobs is the fast path of DecodeListJobs: a scanner for the
// documents OSS sends, ten times quicker than encoding/xml and with a
// fraction of its garbage. It reads a strict subset of XML: an optional
// `<?xml version="1.0" encoding="UTF-8"?>`, elements without attributes or
// namespace prefixes, text with the five named entities and character
// references, whitespace around
// the root. Within that subset it fills r exactly as encoding/xml would.
// Anything outside it (a comment, CDATA, a carriage
// return, an attribute, a repeated field, malformed XML) makes it return
// false, and the caller decodes with encoding/xml, which also words every
// error: the scanner never accepts what encoding/xml refuses, and never
// rejects a page itself. FuzzDecodeListJobsScanner checks both against each
// other.
func scanListJobs(body []byte, r *xmlListJobsResult) bool {
	s := scanner{b: body}
	s.i = len(xmlDecl) * boolInt(bytes.HasPrefix(body, xmlDecl))
	s.space()
	name, empty, ok := s.open()
	if !ok || string(name) != "ListJobsResult" {
		return false
	}
	if !empty {
		// Sized up front: a page's thousand descriptors would otherwise
		// grow the slice of these large structs six times over.
		r.Jobs = make([]xmlJob, 0, bytes.Count(body, []byte("<JobListDescriptor>")))
		var seenToken bool
		ok = s.content(name, func(child []byte, empty bool) bool {
			switch string(child) {
			case "NextToken":
				if seenToken {
					return false
				}
				seenToken = true
				return s.leaf(child, empty, &r.NextToken)
			case "Jobs":
				return empty || s.content(child, func(child []byte, empty bool) bool {
					if string(child) != "JobListDescriptor" {
						return s.skip(child, empty)
					}
					r.Jobs = append(r.Jobs, xmlJob{})
					return empty || s.descriptor(child, &r.Jobs[len(r.Jobs)-1])
				})
			}
			return s.skip(child, empty)
		})
		if !ok {
			return false
		}
	}
	s.space()
	return s.i == len(s.b)
}

var xmlDecl = []byte(`<?xml version="1.0" encoding="UTF-8"?>`)

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// Fields of a descriptor, for telling repeated ones.
const (
	fCreationTime = 1 << iota
	fDescription
	fJobID
	fOperation
	fPriority
	fStatus
	fTerminationDate
	fProgressSummary
	fTotal
	fSucceeded
	fFailed
	fElapsed
	fTimers
	fTimersElapsed
)

func (s *scanner) descriptor(name []byte, x *xmlJob) bool {
	var seen int
	once := func(f int) bool {
		if seen&f != 0 {
			return false
		}
		seen |= f
		return true
	}
	return s.content(name, func(child []byte, empty bool) bool {
		var dst *string
		switch string(child) {
		case "CreationTime":
			dst = &x.CreationTime
			if !once(fCreationTime) {
				return false
			}
		case "Description":
			dst = &x.Description
			if !once(fDescription) {
				return false
			}
		case "JobId":
			dst = &x.JobID
			if !once(fJobID) {
				return false
			}
		case "Operation":
			dst = &x.Operation.Text
			if !once(fOperation) {
				return false
			}
		case "Priority":
			dst = &x.Priority
			if !once(fPriority) {
				return false
			}
		case "Status":
			dst = &x.Status
			if !once(fStatus) {
				return false
			}
		case "TerminationDate":
			dst = &x.TerminationDate
			if !once(fTerminationDate) {
				return false
			}
		case "ProgressSummary":
			if !once(fProgressSummary) {
				return false
			}
			return empty || s.progress(child, x, once)
		default:
			return s.skip(child, empty)
		}
		return s.leaf(child, empty, dst)
	})
}

func (s *scanner) progress(name []byte, x *xmlJob, once func(int) bool) bool {
	p := &x.ProgressSummary
	return s.content(name, func(child []byte, empty bool) bool {
		var dst *string
		var f int
		switch string(child) {
		case "TotalNumberOfTasks":
			dst, f = &p.Total, fTotal
		case "NumberOfTasksSucceeded":
			dst, f = &p.Succeeded, fSucceeded
		case "NumberOfTasksFailed":
			dst, f = &p.Failed, fFailed
		case "ElapsedTimeInActiveSeconds":
			dst, f = &p.Elapsed, fElapsed
		case "Timers":
			if !once(fTimers) {
				return false
			}
			return empty || s.content(child, func(child []byte, empty bool) bool {
				if string(child) != "ElapsedTimeInActiveSeconds" {
					return s.skip(child, empty)
				}
				return once(fTimersElapsed) && s.leaf(child, empty, &p.Timers.Elapsed)
			})
		default:
			return s.skip(child, empty)
		}
		return once(f) && s.leaf(child, empty, dst)
	})
}

// maxScanDepth bounds nesting; deeper documents go to encoding/xml.
const maxScanDepth = 64

type scanner struct {
	b     []byte
	i     int
	depth int
	buf   []byte // entity-decoded text
}

// space skips XML whitespace.
func (s *scanner) space() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// open reads a start tag, <name> or <name/>, at s.i.
func (s *scanner) open() (name []byte, empty, ok bool) {
	if s.i >= len(s.b) || s.b[s.i] != '<' {
		return nil, false, false
	}
	start := s.i + 1
	end := s.name(start)
	if end == start || end >= len(s.b) {
		return nil, false, false
	}
	switch {
	case s.b[end] == '>':
		s.i = end + 1
		return s.b[start:end], false, true
	case s.b[end] == '/' && end+1 < len(s.b) && s.b[end+1] == '>':
		s.i = end + 2
		return s.b[start:end], true, true
	}
	return nil, false, false
}

// name returns the end of the name starting at i: [A-Za-z_][A-Za-z0-9_.-]*.
func (s *scanner) name(i int) int {
	for j := i; j < len(s.b); j++ {
		c := s.b[j]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c == '_':
		case (c >= '0' && c <= '9' || c == '.' || c == '-') && j > i:
		default:
			return j
		}
	}
	return len(s.b)
}

// close reads the end tag </name> at s.i.
func (s *scanner) close(name []byte) bool {
	end := s.i + 2 + len(name)
	if end >= len(s.b) || s.b[s.i] != '<' || s.b[s.i+1] != '/' || !bytes.Equal(s.b[s.i+2:end], name) || s.b[end] != '>' {
		return false
	}
	s.i = end + 1
	return true
}

// text reads text up to the next '<' and returns it decoded; the result is
// valid until the next call.
func (s *scanner) text() ([]byte, bool) {
	start := s.i
	end := bytes.IndexByte(s.b[start:], '<')
	if end < 0 {
		return nil, false // unexpected EOF
	}
	end += start
	s.i = end
	raw := s.b[start:end]
	ascii := true
	amp := false
	for _, c := range raw {
		switch {
		case c >= 0x80:
			ascii = false
		case c == '&':
			amp = true
		case c == ']' || c == '\r' || c < 0x20 && c != '\t' && c != '\n':
			// "]]>" is refused, also across an entity; '\r' is rewritten.
			return nil, false
		}
	}
	if !ascii && !validChars(raw) {
		return nil, false
	}
	if !amp {
		return raw, true
	}
	s.buf = s.buf[:0]
	numeric := false
	for len(raw) > 0 {
		k := bytes.IndexByte(raw, '&')
		if k < 0 {
			s.buf = append(s.buf, raw...)
			break
		}
		s.buf = append(s.buf, raw[:k]...)
		raw = raw[k:]
		semi := bytes.IndexByte(raw, ';')
		if semi < 0 {
			return nil, false
		}
		switch string(raw[1:semi]) {
		case "amp":
			s.buf = append(s.buf, '&')
		case "lt":
			s.buf = append(s.buf, '<')
		case "gt":
			s.buf = append(s.buf, '>')
		case "apos":
			s.buf = append(s.buf, '\'')
		case "quot":
			s.buf = append(s.buf, '"')
		default:
			// A character reference, &#39; or &#x27;, as Go's own XML
			// encoder (and so the simulator) writes quotes.
			num, base := raw[1:semi], 10
			if len(num) < 2 || num[0] != '#' {
				return nil, false
			}
			if num = num[1:]; num[0] == 'x' {
				num, base = num[1:], 16
			}
			n, err := strconv.ParseUint(string(num), base, 64)
			if err != nil || n > unicode.MaxRune {
				return nil, false
			}
			s.buf, numeric = utf8.AppendRune(s.buf, rune(n)), true
		}
		raw = raw[semi+1:]
	}
	if numeric && !xmlChars(s.buf) {
		return nil, false
	}
	return s.buf, true
}

// xmlChars reports whether every character of the UTF-8 b is one XML
// allows: encoding/xml's check of decoded text.
func xmlChars(b []byte) bool {
	for _, r := range string(b) {
		if !(r == 0x09 || r == 0x0A || r == 0x0D || r >= 0x20 && r <= 0xD7FF || r >= 0xE000 && r <= 0xFFFD || r >= 0x10000 && r <= 0x10FFFF) {
			return false
		}
	}
	return true
}

// validChars reports whether b is UTF-8 of characters XML allows, as
// encoding/xml checks them (controls other than tab and newline are
// refused before this is called).
func validChars(b []byte) bool {
	for len(b) > 0 {
		r, size := utf8.DecodeRune(b)
		if r == utf8.RuneError && size == 1 || r == 0xFFFE || r == 0xFFFF {
			return false
		}
		b = b[size:]
	}
	return true
}

// leaf reads the rest of a text-only element opened as name into dst.
func (s *scanner) leaf(name []byte, empty bool, dst *string) bool {
	if empty {
		*dst = ""
		return true
	}
	t, ok := s.text()
	if !ok {
		return false
	}
	*dst = string(t)
	return s.close(name)
}

// content reads the rest of an element opened as name, calling child for
// each child element's start tag (child must read the element's rest);
// text between the children is checked and ignored.
func (s *scanner) content(name []byte, child func(name []byte, empty bool) bool) bool {
	if s.depth++; s.depth > maxScanDepth {
		return false
	}
	defer func() { s.depth-- }()
	for {
		if _, ok := s.text(); !ok {
			return false
		}
		if s.i+1 < len(s.b) && s.b[s.i+1] == '/' {
			return s.close(name)
		}
		n, empty, ok := s.open()
		if !ok || !child(n, empty) {
			return false
		}
	}
}

// skip reads and ignores the rest of an element opened as name.
func (s *scanner) skip(name []byte, empty bool) bool {
	return empty || s.content(name, s.skip)
}

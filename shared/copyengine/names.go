package copyengine

import (
	"fmt"
	"strings"
)

// TempRoot is the prefix of every temporary object: a bucket lifecycle rule
// on it (e.g. delete after 3 days) removes what failed transfers leave.
const TempRoot = "tmp/"

// maxSourceName bounds the file-name element (object names are at most 1024
// bytes).
const maxSourceName = 200

// ObjectName names the final object of the index-th URL of a job:
//
//	<prefix>/<user>/<round>/<resource>/<job>/<index>-<source file name>
//
// Every element is escaped (see escapeElement), so a user ID cannot add path
// levels or climb with "..".
func ObjectName(prefix, user, round, resource, job string, index int, sourceName string) string {
	name := escapeElement(sourceName)
	if sourceName == "" {
		name = "archive"
	}
	if len(name) > maxSourceName {
		name = name[len(name)-maxSourceName:] // keep the extension
	}
	var b strings.Builder
	if p := strings.Trim(prefix, "/"); p != "" {
		for _, e := range strings.Split(p, "/") { // the operator's prefix may have levels
			b.WriteString(escapeElement(e))
			b.WriteByte('/')
		}
	}
	for _, e := range []string{user, round, resource, job} {
		b.WriteString(escapeElement(e))
		b.WriteByte('/')
	}
	fmt.Fprintf(&b, "%d-%s", index, name)
	return b.String()
}

// TempPrefix is the folder of the temporary objects of the index-th URL of a
// job: tmp/<user>/<round>/<resource>/<job>/<index>/ (ends with "/").
func TempPrefix(user, round, resource, job string, index int) string {
	var b strings.Builder
	b.WriteString(TempRoot)
	for _, e := range []string{user, round, resource, job} {
		b.WriteString(escapeElement(e))
		b.WriteByte('/')
	}
	fmt.Fprintf(&b, "%d/", index)
	return b.String()
}

// PartName names the temporary object of one part: <tempPrefix>part-NNNNN.
func PartName(tempPrefix string, index int) string {
	return fmt.Sprintf("%spart-%05d", tempPrefix, index)
}

// composeName names an intermediate object of a compose tree.
func composeName(tempPrefix string, level, index int) string {
	return fmt.Sprintf("%scompose-%d-%05d", tempPrefix, level, index)
}

// escapeElement makes s one safe path element: bytes outside
// [A-Za-z0-9._~-] become %XX (so "/" and "%" are escaped and the mapping is
// one to one), "." and ".." become %2E and %2E%2E, "" becomes "%00".
func escapeElement(s string) string {
	switch s {
	case "":
		return "%00"
	case ".":
		return "%2E"
	case "..":
		return "%2E%2E"
	}
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '~' || c == '-' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	return b.String()
}

// UserPrefix is the folder of every final object of user under the operator's prefix:
// <prefix>/<user>/ (ends with "/"; escaped as in ObjectName, so it matches no other user's folder).
func UserPrefix(prefix, user string) string {
	var b strings.Builder
	if p := strings.Trim(prefix, "/"); p != "" {
		for _, e := range strings.Split(p, "/") {
			b.WriteString(escapeElement(e))
			b.WriteByte('/')
		}
	}
	b.WriteString(escapeElement(user))
	b.WriteByte('/')
	return b.String()
}

// TempUserPrefix is the folder of every temporary object of user: tmp/<user>/.
func TempUserPrefix(user string) string { return TempRoot + escapeElement(user) + "/" }

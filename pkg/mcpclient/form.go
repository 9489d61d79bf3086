package mcpclient

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/mail"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Field is one field of a form elicitation: a property of its requested
// schema, which the MCP specification limits to a flat object of
// primitives and lists of choices.
type Field struct {
	Name        string
	Title       string
	Description string
	// Type is string, number, integer, boolean or array (several of the
	// choices).
	Type string
	// Format is the format of a string: email, uri, date or date-time.
	Format   string
	Required bool
	// Default is the field's default value; nil when it has none.
	Default any
	// Choices are the values allowed (an enum), in the schema's order.
	Choices []Choice
	// Bounds of the field, where the schema sets them.
	MinLength, MaxLength *int
	Minimum, Maximum     *float64
	MinItems, MaxItems   *int
}

// Choice is a value of an enum, with the title the server shows for it
// (empty when it gives none).
type Choice struct {
	Value string
	Title string
}

// Label is the field's title, or else its name.
func (f Field) Label() string {
	if f.Title != "" {
		return f.Title
	}
	return f.Name
}

// Parse reads what the user typed for the field and returns its value
// for the form's content. An empty answer is the default; without one it
// leaves an optional field out (nil, nil) and is refused for a required
// one. A choice is given by its number in Choices (from 1), its value or
// its title; several choices (type array) are separated by commas; a
// boolean is yes/no, y/n or true/false.
func (f Field) Parse(answer string) (any, error) {
	answer = strings.TrimSpace(answer)
	if answer == "" {
		switch {
		case f.Default != nil:
			return f.Default, nil
		case f.Required:
			return nil, errors.New("an answer is required")
		}
		return nil, nil
	}
	switch {
	case f.Type == "array":
		var out []any
		for _, part := range strings.Split(answer, ",") {
			if strings.TrimSpace(part) == "" {
				continue
			}
			v, err := f.choose(part)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		n := len(out)
		if f.MinItems != nil && n < *f.MinItems {
			return nil, fmt.Errorf("choose at least %d", *f.MinItems)
		}
		if f.MaxItems != nil && n > *f.MaxItems {
			return nil, fmt.Errorf("choose at most %d", *f.MaxItems)
		}
		return out, nil
	case len(f.Choices) > 0:
		v, err := f.choose(answer)
		if err != nil {
			return nil, err
		}
		return v, nil
	case f.Type == "boolean":
		switch strings.ToLower(answer) {
		case "y", "yes", "true":
			return true, nil
		case "n", "no", "false":
			return false, nil
		}
		return nil, errors.New("answer yes or no")
	case f.Type == "number" || f.Type == "integer":
		v, err := strconv.ParseFloat(answer, 64)
		if err != nil || math.IsInf(v, 0) || math.IsNaN(v) {
			return nil, errors.New("not a number")
		}
		if f.Type == "integer" && (v != math.Trunc(v) || math.Abs(v) > 1<<53) {
			return nil, errors.New("not a whole number")
		}
		if f.Minimum != nil && v < *f.Minimum {
			return nil, fmt.Errorf("the smallest allowed is %s", num(*f.Minimum))
		}
		if f.Maximum != nil && v > *f.Maximum {
			return nil, fmt.Errorf("the largest allowed is %s", num(*f.Maximum))
		}
		return v, nil
	}
	n := utf8.RuneCountInString(answer)
	if f.MinLength != nil && n < *f.MinLength {
		return nil, fmt.Errorf("at least %d characters", *f.MinLength)
	}
	if f.MaxLength != nil && n > *f.MaxLength {
		return nil, fmt.Errorf("at most %d characters", *f.MaxLength)
	}
	if err := checkFormat(f.Format, answer); err != nil {
		return nil, err
	}
	return answer, nil
}

// choose reads one choice: its number, value or title.
func (f Field) choose(answer string) (string, error) {
	answer = strings.TrimSpace(answer)
	if i, err := strconv.Atoi(answer); err == nil && i >= 1 && i <= len(f.Choices) {
		return f.Choices[i-1].Value, nil
	}
	for _, c := range f.Choices {
		if c.Value == answer {
			return c.Value, nil
		}
	}
	for _, c := range f.Choices {
		if strings.EqualFold(c.Value, answer) || (c.Title != "" && strings.EqualFold(c.Title, answer)) {
			return c.Value, nil
		}
	}
	return "", fmt.Errorf("%q is not one of the choices", answer)
}

// checkFormat checks a string of the formats elicitation allows.
func checkFormat(format, s string) error {
	switch format {
	case "email":
		if a, err := mail.ParseAddress(s); err != nil || a.Address != s {
			return errors.New("not an e-mail address")
		}
	case "uri":
		if u, err := url.Parse(s); err != nil || u.Scheme == "" {
			return errors.New("not an absolute URI")
		}
	case "date":
		if _, err := time.Parse(time.DateOnly, s); err != nil {
			return errors.New("not a date (YYYY-MM-DD)")
		}
	case "date-time":
		if _, err := time.Parse(time.RFC3339, s); err != nil {
			return errors.New("not a date and time (RFC 3339, e.g. 2025-01-31T09:30:00Z)")
		}
	}
	return nil
}

// num formats a bound.
func num(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

// formFields reads the fields of a requested schema, in the order the
// server lists them.
func formFields(schema json.RawMessage) []Field {
	order := propertyOrder(schema)
	top, props := schemaObject(schema)
	if props == nil {
		return nil
	}
	var required []string
	_ = json.Unmarshal(top["required"], &required)
	names := make([]string, 0, len(props))
	seen := map[string]bool{}
	for _, n := range order {
		if _, ok := props[n]; ok && !seen[n] {
			names = append(names, n)
			seen[n] = true
		}
	}
	var rest []string
	for n := range props {
		if !seen[n] {
			rest = append(rest, n)
		}
	}
	sort.Strings(rest)
	names = append(names, rest...)
	fields := make([]Field, 0, len(names))
	for _, n := range names {
		f := readField(props[n])
		f.Name = n
		for _, r := range required {
			f.Required = f.Required || r == n
		}
		fields = append(fields, f)
	}
	return fields
}

// readField reads one property's schema.
func readField(raw json.RawMessage) Field {
	var p map[string]json.RawMessage
	_ = json.Unmarshal(raw, &p)
	var f Field
	get := func(key string, v any) { _ = json.Unmarshal(p[key], v) }
	get("type", &f.Type)
	get("title", &f.Title)
	get("description", &f.Description)
	get("format", &f.Format)
	get("minLength", &f.MinLength)
	get("maxLength", &f.MaxLength)
	get("minimum", &f.Minimum)
	get("maximum", &f.Maximum)
	get("minItems", &f.MinItems)
	get("maxItems", &f.MaxItems)
	if d, ok := p["default"]; ok && string(d) != "null" {
		_ = json.Unmarshal(d, &f.Default)
	}
	f.Choices = readChoices(p)
	if f.Type == "array" {
		var items map[string]json.RawMessage
		_ = json.Unmarshal(p["items"], &items)
		f.Choices = readChoices(items)
	}
	if f.Type == "" && len(f.Choices) > 0 {
		f.Type = "string"
	}
	return f
}

// readChoices reads an enum: enum (with the legacy enumNames as titles),
// or oneOf/anyOf entries of const and title.
func readChoices(p map[string]json.RawMessage) []Choice {
	var out []Choice
	var enum []any
	if json.Unmarshal(p["enum"], &enum) == nil && len(enum) > 0 {
		var names []string
		_ = json.Unmarshal(p["enumNames"], &names)
		for i, v := range enum {
			c := Choice{Value: fmt.Sprint(v)}
			if i < len(names) {
				c.Title = names[i]
			}
			out = append(out, c)
		}
		return out
	}
	for _, key := range []string{"oneOf", "anyOf"} {
		var entries []map[string]json.RawMessage
		if json.Unmarshal(p[key], &entries) != nil {
			continue
		}
		for _, e := range entries {
			var c Choice
			if json.Unmarshal(e["const"], &c.Value) != nil {
				continue
			}
			_ = json.Unmarshal(e["title"], &c.Title)
			out = append(out, c)
		}
		if len(out) > 0 {
			return out
		}
	}
	return nil
}

// propertyOrder returns the names of a JSON Schema's properties in the
// order the document lists them.
func propertyOrder(schema json.RawMessage) []string {
	dec := json.NewDecoder(bytes.NewReader(schema))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil
	}
	for dec.More() {
		k, err := dec.Token()
		if err != nil {
			return nil
		}
		if k != "properties" {
			var skip json.RawMessage
			if dec.Decode(&skip) != nil {
				return nil
			}
			continue
		}
		if t, err := dec.Token(); err != nil || t != json.Delim('{') {
			return nil
		}
		var names []string
		for dec.More() {
			name, err := dec.Token()
			if err != nil {
				return nil
			}
			var skip json.RawMessage
			if dec.Decode(&skip) != nil {
				return nil
			}
			if n, ok := name.(string); ok {
				names = append(names, n)
			}
		}
		return names
	}
	return nil
}

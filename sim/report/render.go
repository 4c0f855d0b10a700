package report

import (
	_ "embed"
	"fmt"
	"html/template"
	"io"
)

//go:embed report.html.tmpl
var pageSource string

// page is the report's template: html/template escapes every value, and the embedded
// visualisation goes into an iframe's srcdoc attribute (escaped as an attribute value, so
// the page it holds cannot break out of it).
var page = template.Must(template.New("report").Parse(pageSource))

// Render writes the page of m.
func Render(w io.Writer, m Model) error {
	if err := page.Execute(w, m); err != nil {
		return fmt.Errorf("render report: %w", err)
	}
	return nil
}

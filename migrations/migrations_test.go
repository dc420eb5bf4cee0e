package migrations_test

import (
	"fmt"
	"io/fs"
	"regexp"
	"strings"
	"testing"

	"github.com/ossjobwatch/ossjobwatch/migrations"
)

// TestFiles checks the rules goose does not: names NNN_name.sql numbered
// from 001 without gaps, and forward-only files.
func TestFiles(t *testing.T) {
	t.Parallel()
	names, err := fs.Glob(migrations.FS, "*")
	if err != nil {
		t.Fatal(err)
	}
	if len(names) == 0 {
		t.Fatal("no migrations embedded")
	}
	valid := regexp.MustCompile(`^(\d{3})_[a-z0-9_]+\.sql$`)
	for i, name := range names { // fs.Glob sorts
		m := valid.FindStringSubmatch(name)
		if m == nil {
			t.Errorf("%s: want a name like 001_schema.sql", name)
			continue
		}
		if want := fmt.Sprintf("%03d", i+1); m[1] != want {
			t.Errorf("%s: want number %s: migrations are numbered from 001 without gaps", name, want)
		}
		b, err := fs.ReadFile(migrations.FS, name)
		if err != nil {
			t.Fatal(err)
		}
		text := string(b)
		if !strings.Contains(text, "-- +goose Up") {
			t.Errorf("%s: no -- +goose Up annotation", name)
		}
		if strings.Contains(text, "-- +goose Down") {
			t.Errorf("%s: has a -- +goose Down section; migrations are forward-only", name)
		}
	}
}

package store_test

import (
	"bytes"
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ossjobwatch/ossjobwatch/store"
	"github.com/ossjobwatch/ossjobwatch/store/storetest"
)

// TestTextFilterFoldsAsTheDatabaseDoes: the console's text filters lower
// the text in PostgreSQL, as they lower the columns, so that a search
// finds what it names whatever the database's locale: under the C locale
// (ASCII folding only) "Élan" finds "Élan nightly" on the jobs page, in
// the live page's recent events and in its stream, which all agree.
func TestTextFilterFoldsAsTheDatabaseDoes(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	admin, err := pgx.Connect(ctx, storetest.DatabaseURL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(context.Background())
	name := "c_locale_" + strconv.FormatInt(time.Now().UnixNano()%1e9, 10)
	if _, err := admin.Exec(ctx, `CREATE DATABASE `+name+` TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C'`); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = admin.Exec(context.Background(), `DROP DATABASE `+name+` WITH (FORCE)`) })
	u := strings.Replace(storetest.DatabaseURL(t), "/postgres?", "/"+name+"?", 1)
	st, err := store.Open(ctx, u, store.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Pool().Exec(ctx, `
		INSERT INTO jobs (target, job_id, status, description, descriptor, first_seen_at, last_seen_at, last_changed_at, last_sequence, creation_time)
		VALUES ('hz', 'J1', 'Active', 'Élan nightly', '{}', now(), now(), now(), 1, now())`); err != nil {
		t.Fatal(err)
	}
	e := storetest.NewEvent(t, "hz", "J1", 1, time.Now())
	e.Payload = bytes.ReplaceAll(e.Payload, []byte(`"nightly tagging"`), []byte(`"Élan nightly"`))
	storetest.InsertEvents(t, st, "hz", e)
	r := st.Reader()
	for _, text := range []string{"Élan", "élan nightly", "ÉLAN", "j1"} {
		page, err := r.JobsPage(ctx, store.JobsPageQuery{Text: text})
		if err != nil {
			t.Fatal(err)
		}
		recent, _, _, err := r.RecentEvents(ctx, store.EventFilter{Text: text}, 10)
		if err != nil {
			t.Fatal(err)
		}
		_, next, _, err := r.EventsAfter(ctx, store.EventFilter{Text: text}, 0, nil, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(next) != 1 {
			t.Fatalf("EventsAfter: %d events", len(next))
		}
		jobs, live, stream := len(page.Jobs) == 1, len(recent) == 1, next[0].Matches
		if jobs != live || live != stream {
			t.Errorf("q=%s: the jobs page finds the job: %t, the live page: %t, its stream: %t; they disagree", text, jobs, live, stream)
		}
		if want := text != "élan nightly"; jobs != want { // the C locale folds ASCII only: é is not É
			t.Errorf("q=%s: found: %t, want %t", text, jobs, want)
		}
	}
}

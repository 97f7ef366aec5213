// Package migrations owns the database schema of chat-service: goose SQL
// files, one directory per dialect, embedded in the binary and applied by
// modules/store at start-up.
//
// Both directories describe the same tables: a change to one is made to the other in a file with the same version number.
// Files 00001 and 00002 are the chat tables; later numbers are free for the
// watermill outbox and command-queue tables. Applied files are never edited.
package migrations

import (
	"embed"
	"io/fs"
)

//go:embed postgres/*.sql sqlite/*.sql
var files embed.FS

// Postgres returns the PostgreSQL migrations.
func Postgres() fs.FS { return sub("postgres") }

// SQLite returns the SQLite migrations.
func SQLite() fs.FS { return sub("sqlite") }

func sub(dir string) fs.FS {
	f, err := fs.Sub(files, dir)
	if err != nil {
		// Unreachable: dir is a literal that the embed pattern above guarantees.
		panic("migrations: " + err.Error())
	}
	return f
}

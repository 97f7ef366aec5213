package store

import (
	"context"
	"fmt"
)

// lastSeqsChunk bounds the ids of one LastSeqs query.
const lastSeqsChunk = 500

// LastSeqs returns the last seq of each of the sessions that exist, by
// primary key, lastSeqsChunk ids per query.
func (s *Store) LastSeqs(ctx context.Context, ids []string) (map[string]int64, error) {
	out := make(map[string]int64, len(ids))
	for len(ids) > 0 {
		chunk := ids[:min(len(ids), lastSeqsChunk)]
		ids = ids[len(chunk):]
		args := make([]any, len(chunk))
		for i, id := range chunk {
			args[i] = id
		}
		rows, err := s.db.QueryContext(ctx, s.d.Rebind(`SELECT id, last_seq FROM chat_sessions WHERE id IN (`+placeholders(len(chunk))+`)`), args...)
		if err != nil {
			return nil, fmt.Errorf("last seqs: %w", classify(err))
		}
		for rows.Next() {
			var id string
			var seq int64
			if err := rows.Scan(&id, &seq); err != nil {
				rows.Close()
				return nil, fmt.Errorf("last seqs: %w", classify(err))
			}
			out[id] = seq
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, fmt.Errorf("last seqs: %w", classify(err))
		}
	}
	return out, nil
}

package store

import (
	"context"
	"fmt"
)

// Contacts returns the distinct users other than userID who share a
// session with userID (presence: who is told, and whom userID may ask
// about). When among is not nil, only those of among are returned. One
// indexed read: the user's memberships by chat_session_members_user_idx,
// then each session's members by the primary key.
func (s *Store) Contacts(ctx context.Context, userID string, among []string) ([]string, error) {
	if among != nil && len(among) == 0 {
		return nil, nil
	}
	q := `SELECT DISTINCT o.user_id FROM chat_session_members m
		JOIN chat_session_members o ON o.session_id = m.session_id
		WHERE m.user_id = ? AND o.user_id <> ?`
	args := []any{userID, userID}
	if among != nil {
		q += ` AND o.user_id IN (` + placeholders(len(among)) + `)`
		for _, u := range among {
			args = append(args, u)
		}
	}
	rows, err := s.db.QueryContext(ctx, s.d.Rebind(q), args...)
	if err != nil {
		return nil, fmt.Errorf("contacts of %s: %w", userID, classify(err))
	}
	defer rows.Close()
	var users []string
	for rows.Next() {
		var u string
		if err := rows.Scan(&u); err != nil {
			return nil, fmt.Errorf("contacts of %s: %w", userID, classify(err))
		}
		users = append(users, u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("contacts of %s: %w", userID, classify(err))
	}
	return users, nil
}

package chat

import (
	"context"
	"slices"
)

// Enrichment: profile fields (display name, avatar) from the directory,
// added to what the store returns; a user the directory does not know
// keeps the bare id.

func (s *Service) sender(ctx context.Context, userID string) *Sender {
	p, ok := s.dir.Lookup(ctx, []string{userID})[userID]
	if !ok {
		return nil
	}
	return &Sender{UserID: userID, DisplayName: p.DisplayName, AvatarURL: p.AvatarURL}
}

func (s *Service) enrichMessages(ctx context.Context, list []Message) {
	ids := make([]string, 0, 4)
	for _, m := range list {
		if !slices.Contains(ids, m.SenderID) {
			ids = append(ids, m.SenderID)
		}
	}
	if len(ids) == 0 {
		return
	}
	found := s.dir.Lookup(ctx, ids)
	for i := range list {
		if p, ok := found[list[i].SenderID]; ok {
			list[i].Sender = &Sender{UserID: p.UserID, DisplayName: p.DisplayName, AvatarURL: p.AvatarURL}
		}
	}
}

func (s *Service) enrichSessions(ctx context.Context, list []*Session) {
	var ids []string
	for _, sess := range list {
		for _, p := range sess.Participants {
			if !slices.Contains(ids, p.UserID) {
				ids = append(ids, p.UserID)
			}
		}
		if m := sess.LastMessage; m != nil && !slices.Contains(ids, m.SenderID) {
			ids = append(ids, m.SenderID)
		}
	}
	if len(ids) == 0 {
		return
	}
	found := s.dir.Lookup(ctx, ids)
	for _, sess := range list {
		for i := range sess.Participants {
			if p, ok := found[sess.Participants[i].UserID]; ok {
				sess.Participants[i].DisplayName, sess.Participants[i].AvatarURL = p.DisplayName, p.AvatarURL
			}
		}
		if m := sess.LastMessage; m != nil {
			if p, ok := found[m.SenderID]; ok {
				m.Sender = &Sender{UserID: p.UserID, DisplayName: p.DisplayName, AvatarURL: p.AvatarURL}
			}
		}
	}
}

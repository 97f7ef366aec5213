package chat

// AllowRead takes one read from userID's read budget
// (limits.read_rate_per_second): for reads served outside this package,
// such as GET /api/chat/presence. It returns an error that ProblemOf maps
// to 429 when the budget is spent.
func (s *Service) AllowRead(userID string) error { return s.reads.Allow(userID) }

// A header of the consumer's own that has the name of one of fiberloop's:
// fiberloop's installed headers must not pick it up (they name each other
// as "fiberloop/sync/mutex.h").
#error "a consumer's own sync/mutex.h was included in place of fiberloop's"

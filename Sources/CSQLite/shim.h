// The system SQLite (Debian: libsqlite3-dev), as a Swift module: the engine
// behind `vtrace catalog`.
#include <sqlite3.h>

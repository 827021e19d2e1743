// OpenSSL's libcrypto (Debian: libssl-dev), as a Swift module: SHA-256 of a
// catalogued trace's bytes (its identity in `vtrace catalog`).
#include <openssl/evp.h>

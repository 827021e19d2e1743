// The system libzstd (Debian: libzstd-dev), as a Swift module.
#include <zstd.h>
#include <zstd_errors.h>

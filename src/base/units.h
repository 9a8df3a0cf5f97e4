/*
 * units.h - human-readable sizes and durations, shared by the TUI and the
 * headless printers.
 */
#ifndef PMT_BASE_UNITS_H
#define PMT_BASE_UNITS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Binary units: "0 B", "512 B", "12.0 KiB", "212 MiB", "1.50 GiB" (three
 * significant digits). Returns buf. */
char *units_bytes(char *buf, size_t len, double bytes);

/* As units_bytes with an explicit sign: "+1.20 MiB", "-512 B", "0 B". */
char *units_bytes_signed(char *buf, size_t len, double bytes);

/*
 * Fixed-width tables (snapshot and diff printers): one decimal, exact bytes
 * below 1 KiB: "12.3 MiB", "512 B"; with SIGN, "+12.3 MiB", "-4.0 KiB",
 * "0 B". Returns buf (at least 16 bytes).
 */
char *units_bytes_table(char *buf, size_t len, int64_t bytes, bool sign);

/* Counts with thousands separators: "145,114"; with SIGN, "+1,204", "-3",
 * "0". Returns buf (at least 32 bytes hold any value). */
char *units_count(char *buf, size_t len, int64_t v, bool sign);

/* Durations: "45s", "12m03s", "3h07m", "2d04h". */
char *units_duration(char *buf, size_t len, double seconds);

#endif

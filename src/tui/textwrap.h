/*
 * textwrap.h - break a message into rows of a given width, at spaces.
 *
 * The status line, the message panel and the views' notes show sentences
 * that may be longer than the terminal is wide (an attach failure whose
 * remedy comes last). Rather than cut them at the edge, they are wrapped
 * with this pure function, and drawn one row at a time with screen_text.
 * No curses here: cell widths come from the caller (screen_cp_width), so the
 * rows agree with what the screen draws, and tests can give their own.
 */
#ifndef PMT_TUI_TEXTWRAP_H
#define PMT_TUI_TEXTWRAP_H

#include <stddef.h>
#include <stdint.h>

/* One row: the bytes [start, start + len) of the text; it neither starts
 * nor ends with a space. */
struct textwrap_row {
	size_t start;
	size_t len;
};

/* The cells a code point takes on screen (1 or 2; anything else counts 1).
 * Invalid UTF-8 arrives as STRSAFE_INVALID, one byte at a time. */
typedef int (*textwrap_width_fn)(uint32_t cp);

/*
 * Breaks the UTF-8 string TEXT into rows of at most WIDTH cells (WIDTH < 1
 * counts as 1): at the last space that lets a row fit, dropping the spaces
 * at the break; a word longer than a whole row is split between characters.
 * Never splits a UTF-8 sequence. Fills the first MAX rows into ROWS (ROWS
 * may be NULL when MAX is 0) and returns how many rows the whole text needs:
 * more than MAX means it did not fit. An empty text (or only spaces) needs 0.
 * Pure; thread-safe.
 */
size_t textwrap(const char *text, int width, textwrap_width_fn cell_width, struct textwrap_row *rows,
		size_t max);

#endif

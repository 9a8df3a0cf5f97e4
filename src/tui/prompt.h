/*
 * prompt.h - a one-line text input in the status line (filter patterns,
 * snapshot labels, file names). Pure state + a draw call.
 */
#ifndef PMT_TUI_PROMPT_H
#define PMT_TUI_PROMPT_H

#include <stdbool.h>
#include <stddef.h>

enum prompt_result {
	PROMPT_EDITING, /* keep going */
	PROMPT_DONE,    /* Enter: buf holds the text */
	PROMPT_CANCEL,  /* Esc */
};

struct prompt {
	bool active;
	char label[160];
	char buf[256];
	size_t len;
};

/* Open with a label and initial text. */
void prompt_open(struct prompt *p, const char *label, const char *initial);

/* Feed a key (curses code). Printable bytes are appended (UTF-8 passes
 * through byte by byte), Backspace deletes a character, ^U clears. */
enum prompt_result prompt_key(struct prompt *p, int ch);

/* Draw on the last screen line: the label, then what is typed; when both do
 * not fit, the end of what is typed after a '<' (the label cut to half the
 * line at most). */
void prompt_draw(const struct prompt *p);

#endif

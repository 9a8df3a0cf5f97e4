/*
 * strsafe.c - display-safe copies of target text (see strsafe.h).
 */
#include "base/strsafe.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

static bool cont(unsigned char c)
{
	return (c & 0xc0) == 0x80;
}

uint32_t strsafe_decode(const char *str, size_t n, size_t *len)
{
	const unsigned char *s = (const unsigned char *)str;
	unsigned char c = s[0];

	*len = 1;
	if (c < 0x80)
		return c;
	/* Lead byte, then the range its second byte must fall in: that one
	 * check rules out overlong forms, surrogates and values past U+10FFFF. */
	if (c >= 0xc2 && c <= 0xdf) {
		if (n < 2 || !cont(s[1]))
			return STRSAFE_INVALID;
		*len = 2;
		return (uint32_t)(c & 0x1f) << 6 | (s[1] & 0x3f);
	}
	if (c >= 0xe0 && c <= 0xef) {
		unsigned char lo = c == 0xe0 ? 0xa0 : 0x80, hi = c == 0xed ? 0x9f : 0xbf;

		if (n < 3 || s[1] < lo || s[1] > hi || !cont(s[2]))
			return STRSAFE_INVALID;
		*len = 3;
		return (uint32_t)(c & 0x0f) << 12 | (uint32_t)(s[1] & 0x3f) << 6 | (s[2] & 0x3f);
	}
	if (c >= 0xf0 && c <= 0xf4) {
		unsigned char lo = c == 0xf0 ? 0x90 : 0x80, hi = c == 0xf4 ? 0x8f : 0xbf;

		if (n < 4 || s[1] < lo || s[1] > hi || !cont(s[2]) || !cont(s[3]))
			return STRSAFE_INVALID;
		*len = 4;
		return (uint32_t)(c & 0x07) << 18 | (uint32_t)(s[1] & 0x3f) << 12 |
		       (uint32_t)(s[2] & 0x3f) << 6 | (s[3] & 0x3f);
	}
	return STRSAFE_INVALID;
}

bool strsafe_cp_ok(uint32_t cp)
{
	if (cp < 0x20 || (cp >= 0x7f && cp <= 0x9f))
		return false; /* C0, DEL, C1 */
	if (cp == 0x061c || cp == 0x200e || cp == 0x200f || (cp >= 0x202a && cp <= 0x202e) ||
	    (cp >= 0x2066 && cp <= 0x2069))
		return false; /* bidirectional controls */
	if (cp == 0x2028 || cp == 0x2029 || cp == 0xfeff)
		return false; /* line and paragraph separators, byte-order mark */
	return cp <= 0x10ffff && !(cp >= 0xd800 && cp <= 0xdfff); /* also STRSAFE_INVALID */
}

/*
 * The next unit of output for the text at S (N bytes left): sets *IN to the
 * bytes it consumes and returns how many bytes to write from S, 0 meaning
 * write one '?' instead.
 */
static size_t next_unit(const char *s, size_t n, size_t *in)
{
	if ((unsigned char)*s >= 0x20 && (unsigned char)*s < 0x7f) {
		*in = 1;
		return 1; /* most text is ASCII */
	}
	uint32_t cp = strsafe_decode(s, n, in);

	return strsafe_cp_ok(cp) ? *in : 0;
}

size_t strsafe_copy(char *dst, size_t dstlen, const char *src, size_t srclen)
{
	size_t i = 0, o = 0;

	if (dstlen == 0)
		return 0;
	while (i < srclen) {
		unsigned char c = (unsigned char)src[i];
		if (c >= 0x20 && c < 0x7f) { /* most text is ASCII: no call */
			if (o + 1 >= dstlen)
				break;
			dst[o++] = (char)c;
			i++;
			continue;
		}
		size_t in, out = next_unit(src + i, srclen - i, &in);
		size_t w = out ? out : 1;

		if (o + w >= dstlen)
			break;
		if (out)
			memcpy(dst + o, src + i, out);
		else
			dst[o] = '?';
		o += w;
		i += in;
	}
	dst[o] = '\0';
	return i;
}

char *strsafe_shown(char *buf, size_t buflen, const char *s)
{
	size_t n;

	if (buflen == 0)
		return buf;
	if (s == NULL)
		s = "";
	n = strlen(s);
	if (strsafe_copy(buf, buflen, s, n) < n && buflen > 4) {
		/* Cut again, leaving room for the marker. */
		size_t len = strlen(buf);

		while (len + 4 > buflen)
			len--;
		while (len > 0 && cont((unsigned char)buf[len]))
			len--; /* back to the start of a character */
		memcpy(buf + len, "...", 4);
	}
	return buf;
}

void strsafe_inplace(char *s)
{
	size_t n = strlen(s), i = 0, o = 0;

	while (i < n) {
		size_t in, out = next_unit(s + i, n - i, &in);

		if (out)
			memmove(s + o, s + i, out);
		else
			s[o] = '?';
		o += out ? out : 1;
		i += in;
	}
	s[o] = '\0';
}

int strsafe_fputs(const char *s, FILE *fp)
{
	size_t n = strlen(s), i = 0, run = 0;

	/* Write runs of safe text with one fwrite each. */
	while (i < n) {
		size_t in, out = next_unit(s + i, n - i, &in);

		if (out) {
			run += out;
			i += in;
			continue;
		}
		if (fwrite(s + i - run, 1, run, fp) != run || fputc('?', fp) == EOF)
			return EOF;
		run = 0;
		i += in;
	}
	if (fwrite(s + i - run, 1, run, fp) != run)
		return EOF;
	return 0;
}

int strsafe_fputs_json(const char *json, FILE *fp)
{
	size_t n = strlen(json), i = 0, run = 0;

	while (i < n) {
		unsigned char c = (unsigned char)json[i];
		size_t in;
		uint32_t cp;

		/* Formatting whitespace and all other ASCII pass; cJSON escapes
		 * control characters inside strings itself. */
		if (c == '\n' || c == '\t' || c == '\r' || (c >= 0x20 && c < 0x7f)) {
			run++;
			i++;
			continue;
		}
		cp = strsafe_decode(json + i, n - i, &in);
		if (strsafe_cp_ok(cp)) {
			run += in;
			i += in;
			continue;
		}
		if (fwrite(json + i - run, 1, run, fp) != run ||
		    fprintf(fp, "\\u%04x", cp == STRSAFE_INVALID ? 0xfffdu : (unsigned)cp) < 0)
			return EOF;
		run = 0;
		i += in;
	}
	if (fwrite(json + i - run, 1, run, fp) != run)
		return EOF;
	return 0;
}

void strsafe_eprintf(const char *fmt, ...)
{
	char small[1024], *text = small;
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(small, sizeof small, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof small) {
		text = malloc((size_t)n + 1);
		if (text == NULL) {
			text = small; /* no memory for the whole: show what fitted */
		} else {
			va_start(ap, fmt);
			vsnprintf(text, (size_t)n + 1, fmt, ap);
			va_end(ap);
		}
	}
	strsafe_fputs(text, stderr);
	fputc('\n', stderr);
	if (text != small)
		free(text);
}

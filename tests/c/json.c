/* A small JSON reader for the test replayers: see json.h. */
#include "json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *p, *end, *start;
    int depth;
} parser;

static bool parse_value(parser *ps, json_value *out);
static void free_children(json_value *v);

static void skip_space(parser *ps) {
    while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r'))
        ps->p++;
}

static bool literal(parser *ps, const char *word) {
    size_t n = strlen(word);
    if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, word, n) != 0) return false;
    ps->p += n;
    return true;
}

static int hex_digit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static bool read_hex4(parser *ps, unsigned *out) {
    unsigned v = 0;
    int i;
    if (ps->end - ps->p < 4) return false;
    for (i = 0; i < 4; i++) {
        int d = hex_digit(ps->p[i]);
        if (d < 0) return false;
        v = v * 16 + (unsigned)d;
    }
    ps->p += 4;
    *out = v;
    return true;
}

static size_t put_utf8(char *out, unsigned long cp) {
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* A string at ps->p (after its opening quote): decoded into a new buffer. */
static bool parse_string(parser *ps, char **out, size_t *out_len) {
    /* The decoded form is never longer than the source (an escape of 6 bytes gives at most 3,
     * a surrogate pair of 12 gives 4). */
    const char *scan = ps->p;
    char *buf, *w;
    while (scan < ps->end && *scan != '"') scan += (*scan == '\\') ? 2 : 1;
    if (scan >= ps->end) return false;
    buf = malloc((size_t)(scan - ps->p) + 1);
    if (!buf) return false;
    w = buf;
    while (ps->p < ps->end && *ps->p != '"') {
        char c = *ps->p++;
        if ((unsigned char)c < 0x20) goto fail;
        if (c != '\\') {
            *w++ = c;
            continue;
        }
        if (ps->p >= ps->end) goto fail;
        c = *ps->p++;
        switch (c) {
            case '"': *w++ = '"'; break;
            case '\\': *w++ = '\\'; break;
            case '/': *w++ = '/'; break;
            case 'b': *w++ = '\b'; break;
            case 'f': *w++ = '\f'; break;
            case 'n': *w++ = '\n'; break;
            case 'r': *w++ = '\r'; break;
            case 't': *w++ = '\t'; break;
            case 'u': {
                unsigned hi, lo;
                unsigned long cp;
                if (!read_hex4(ps, &hi)) goto fail;
                cp = hi;
                if (hi >= 0xD800 && hi <= 0xDBFF) {
                    if (!literal(ps, "\\u") || !read_hex4(ps, &lo) || lo < 0xDC00 || lo > 0xDFFF)
                        goto fail;
                    cp = 0x10000 + (((unsigned long)hi - 0xD800) << 10) + (lo - 0xDC00);
                } else if (hi >= 0xDC00 && hi <= 0xDFFF) {
                    goto fail;
                }
                w += put_utf8(w, cp);
                break;
            }
            default: goto fail;
        }
    }
    if (ps->p >= ps->end) goto fail;
    ps->p++; /* the closing quote */
    *w = '\0';
    *out = buf;
    *out_len = (size_t)(w - buf);
    return true;
fail:
    free(buf);
    return false;
}

static bool parse_number(parser *ps, json_value *out) {
    const char *s = ps->p;
    char *end = NULL;
    bool integer = true;
    if (ps->p < ps->end && *ps->p == '-') {
        ps->p++;
        integer = false;
    }
    while (ps->p < ps->end && strchr("0123456789.eE+-", *ps->p)) {
        if (*ps->p == '.' || *ps->p == 'e' || *ps->p == 'E') integer = false;
        ps->p++;
    }
    {
        char tmp[64];
        size_t n = (size_t)(ps->p - s);
        if (n == 0 || n >= sizeof tmp) return false;
        memcpy(tmp, s, n);
        tmp[n] = '\0';
        out->type = JSON_NUMBER;
        out->number = strtod(tmp, &end);
        if (end != tmp + n) return false;
        out->is_integer = integer;
        if (integer) out->integer = strtoull(tmp, NULL, 10);
    }
    return true;
}

static bool push_item(json_value *container, size_t *cap, const json_value *item, char *key) {
    if (container->len == *cap) {
        size_t n = *cap ? *cap * 2 : 4;
        json_value *items = realloc(container->items, n * sizeof *items);
        if (!items) return false;
        container->items = items;
        if (container->type == JSON_OBJECT) {
            char **keys = realloc(container->keys, n * sizeof *keys);
            if (!keys) return false;
            container->keys = keys;
        }
        *cap = n;
    }
    container->items[container->len] = *item;
    if (container->type == JSON_OBJECT) container->keys[container->len] = key;
    container->len++;
    return true;
}

static bool parse_container(parser *ps, json_value *out, bool object) {
    size_t cap = 0;
    char close = object ? '}' : ']';
    out->type = object ? JSON_OBJECT : JSON_ARRAY;
    if (++ps->depth > 64) return false;
    skip_space(ps);
    if (ps->p < ps->end && *ps->p == close) {
        ps->p++;
        ps->depth--;
        return true;
    }
    for (;;) {
        json_value item;
        char *key = NULL;
        size_t key_len = 0;
        memset(&item, 0, sizeof item);
        skip_space(ps);
        if (object) {
            if (ps->p >= ps->end || *ps->p != '"') return false;
            ps->p++;
            if (!parse_string(ps, &key, &key_len)) return false;
            skip_space(ps);
            if (ps->p >= ps->end || *ps->p != ':') {
                free(key);
                return false;
            }
            ps->p++;
        }
        if (!parse_value(ps, &item) || !push_item(out, &cap, &item, key)) {
            free_children(&item);
            free(key);
            return false;
        }
        skip_space(ps);
        if (ps->p < ps->end && *ps->p == ',') {
            ps->p++;
            continue;
        }
        if (ps->p < ps->end && *ps->p == close) {
            ps->p++;
            ps->depth--;
            return true;
        }
        return false;
    }
}

static bool parse_value(parser *ps, json_value *out) {
    memset(out, 0, sizeof *out);
    skip_space(ps);
    if (ps->p >= ps->end) return false;
    switch (*ps->p) {
        case 'n': out->type = JSON_NULL; return literal(ps, "null");
        case 't': out->type = JSON_BOOL; out->boolean = true; return literal(ps, "true");
        case 'f': out->type = JSON_BOOL; return literal(ps, "false");
        case '"': ps->p++; out->type = JSON_STRING; return parse_string(ps, &out->str, &out->len);
        case '[': ps->p++; return parse_container(ps, out, false);
        case '{': ps->p++; return parse_container(ps, out, true);
        default: return parse_number(ps, out);
    }
}

static void free_children(json_value *v) {
    size_t i;
    if (v->type == JSON_STRING) free(v->str);
    if (v->type == JSON_ARRAY || v->type == JSON_OBJECT) {
        for (i = 0; i < v->len; i++) {
            free_children(&v->items[i]);
            if (v->keys) free(v->keys[i]);
        }
        free(v->items);
        free(v->keys);
    }
}

json_value *json_parse(const char *text, size_t len, size_t *error_at) {
    parser ps;
    json_value *root = malloc(sizeof *root);
    if (!root) return NULL;
    ps.p = ps.start = text;
    ps.end = text + len;
    ps.depth = 0;
    if (parse_value(&ps, root)) {
        skip_space(&ps);
        if (ps.p == ps.end) return root;
    }
    /* A failed parse leaves a partial tree (every container counts the items it holds). */
    free_children(root);
    free(root);
    if (error_at) *error_at = (size_t)(ps.p - ps.start);
    return NULL;
}

json_value *json_parse_file(const char *path) {
    FILE *f = fopen(path, "rb");
    char *text;
    long size;
    size_t error_at = 0;
    json_value *root;
    if (!f) {
        fprintf(stderr, "cannot open %s\n", path);
        return NULL;
    }
    if (fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
        fclose(f);
        fprintf(stderr, "cannot read %s\n", path);
        return NULL;
    }
    text = malloc((size_t)size + 1);
    if (!text || fread(text, 1, (size_t)size, f) != (size_t)size) {
        free(text);
        fclose(f);
        fprintf(stderr, "cannot read %s\n", path);
        return NULL;
    }
    fclose(f);
    root = json_parse(text, (size_t)size, &error_at);
    if (!root) fprintf(stderr, "%s: JSON syntax error at byte %zu\n", path, error_at);
    free(text);
    return root;
}

void json_free(json_value *value) {
    if (!value) return;
    free_children(value);
    free(value);
}

const json_value *json_get(const json_value *object, const char *name) {
    size_t i;
    if (!object || object->type != JSON_OBJECT) return NULL;
    for (i = 0; i < object->len; i++)
        if (strcmp(object->keys[i], name) == 0) return &object->items[i];
    return NULL;
}

/*
 * A small JSON reader for the test replayers of the JSON files of tests/cases/ (C and C++): parses a whole
 * document into a tree. Strings are decoded to UTF-8 bytes (\u escapes included, so they may
 * hold NUL bytes: use `len`). Not a general-purpose parser: no streaming, documents up to the
 * memory at hand, and a syntax error just fails the parse.
 */
#ifndef AFC_TEST_JSON_H
#define AFC_TEST_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { JSON_NULL, JSON_BOOL, JSON_NUMBER, JSON_STRING, JSON_ARRAY, JSON_OBJECT } json_type;

typedef struct json_value json_value;

struct json_value {
    json_type type;
    bool boolean;        /* JSON_BOOL */
    double number;       /* JSON_NUMBER */
    uint64_t integer;    /* JSON_NUMBER that is a non-negative integer literal */
    bool is_integer;     /* ... and whether it is one */
    char *str;           /* JSON_STRING: the UTF-8 bytes, NUL-terminated (may hold NULs) */
    size_t len;          /* JSON_STRING: bytes; JSON_ARRAY/OBJECT: items */
    json_value *items;   /* JSON_ARRAY/OBJECT: the items (an object's values) */
    char **keys;         /* JSON_OBJECT: the member names */
};

/* Parses `text` (`len` bytes); NULL on a syntax error (with the byte offset in *error_at). */
json_value *json_parse(const char *text, size_t len, size_t *error_at);

/* Reads and parses a file; NULL (with a message on stderr) if it cannot be read or parsed. */
json_value *json_parse_file(const char *path);

/* Frees a tree from json_parse (NULL is ignored). */
void json_free(json_value *value);

/* The member `name` of an object, or NULL if absent (or `object` is not an object). */
const json_value *json_get(const json_value *object, const char *name);

#ifdef __cplusplus
}
#endif

#endif /* AFC_TEST_JSON_H */

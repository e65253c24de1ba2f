/* Reads one integer from a flat JSON config: enough for the misbehaving fixtures. */
#ifndef FIXTURE_CONFIG_H
#define FIXTURE_CONFIG_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The integer value of "key" in `json`, or `fallback` when the key is absent. */
static inline long fixture_config_long(const char *json, const char *key, long fallback) {
    char pattern[80];
    snprintf(pattern, sizeof pattern, "\"%s\":", key);
    const char *at = json ? strstr(json, pattern) : NULL;
    if (!at) return fallback;
    return strtol(at + strlen(pattern), NULL, 10);
}

#endif

/* jget -- prints one value from the JSON document on stdin, for test scripts
 * (a fresh machine has no jq). Usage: jget PATH, PATH like ".status",
 * ".lanes.bulk.depth", ".timeline.0.status", ".timeline.#" (length).
 * Strings print raw, other values as compact JSON. Exit 1 when absent. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: jget .path < file.json\n");
        return 2;
    }
    json_error_t e;
    json_t *root = json_loadf(stdin, JSON_DISABLE_EOF_CHECK, &e);
    if (!root) {
        fprintf(stderr, "jget: not JSON: %s (line %d)\n", e.text, e.line);
        return 2;
    }
    char *path = strdup(argv[1]);
    json_t *cur = root;
    for (char *tok = strtok(path, "."); tok && cur; tok = strtok(NULL, ".")) {
        if (strcmp(tok, "#") == 0) {
            printf("%zu\n", json_is_array(cur) ? json_array_size(cur) : json_object_size(cur));
            free(path);
            json_decref(root);
            return 0;
        }
        if (json_is_array(cur))
            cur = json_array_get(cur, (size_t)strtoul(tok, NULL, 10));
        else
            cur = json_object_get(cur, tok);
    }
    int rc = 1;
    if (cur) {
        if (json_is_string(cur)) {
            puts(json_string_value(cur));
        } else {
            char *s = json_dumps(cur, JSON_COMPACT | JSON_ENCODE_ANY);
            puts(s ? s : "");
            free(s);
        }
        rc = 0;
    }
    free(path);
    json_decref(root);
    return rc;
}

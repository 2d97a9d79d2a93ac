/* FASTFC_ASSERT(cond): a bounds check of the debug build (-DFASTFC_DEBUG: .ci/sanitize), on
 * whatever NDEBUG says; nothing in a release build. */
#ifndef FASTFC_DEBUG_H
#define FASTFC_DEBUG_H
#ifdef FASTFC_DEBUG
#include <stdio.h>
#include <stdlib.h>
#define FASTFC_ASSERT(cond)                                                                \
    do {                                                                                   \
        if (!(cond)) {                                                                     \
            fprintf(stderr, "%s:%d: fastfc debug check failed: %s\n", __FILE__, __LINE__,  \
                    #cond);                                                                \
            abort();                                                                       \
        }                                                                                  \
    } while (0)
#else
#define FASTFC_ASSERT(cond) ((void)0)
#endif
#endif

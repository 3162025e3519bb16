/* Header self-containment: a translation unit with nothing but the header (compiled as C99 and,
 * with -x c++, as C++17, both with -Wall -Wextra -Werror -pedantic). */
#include "alphaforge_cache.h"

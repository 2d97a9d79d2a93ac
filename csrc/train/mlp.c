#include <stddef.h>
#include "debug.h"
#include "fastfc.h"
#include "train/row_owners.h"

#define MT float
#define MP s
#include "train/mlp_template.h"

#define MT double
#define MP d
#include "train/mlp_template.h"

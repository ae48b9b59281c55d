#include "fieldsync/report/writer.h"

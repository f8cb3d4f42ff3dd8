# Loaded by WSGIImportScript: records, in this process, that and when it ran.
import builtins
import os
import time

builtins._mwrs_imported = {'pid': os.getpid(), 'at': time.time()}

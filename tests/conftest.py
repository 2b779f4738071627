import os
import sys

# Tests run the hoist in this checkout, whatever is installed elsewhere.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

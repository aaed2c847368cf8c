"""geoplan: plan underground cables and collective meter boxes that replace flying wires."""

from importlib.metadata import PackageNotFoundError, version

from . import errors as errors
from .catalogue import Catalogue as Catalogue
from .catalogue import load_catalogue as load_catalogue
from .errors import GeoplanError as GeoplanError
from .export import export_plan as export_plan
from .export import read_plan_layers as read_plan_layers
from .layers import Layers as Layers
from .layers import read_layers as read_layers
from .layers import summarize as summarize
from .layers import validate_layers as validate_layers
from .plan import Plan as Plan
from .plan import plan as plan
from .power_flow import check_power_flow as check_power_flow
from .settings import Settings as Settings
from .settings import load_settings as load_settings

try:
    __version__ = version("geoplan")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

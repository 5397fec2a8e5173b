from services.common.migrations_env import run
from services.portal.store import supplies_models  # noqa: F401 - its tables join Base.metadata
from services.portal.store.models import Base

run(Base.metadata)

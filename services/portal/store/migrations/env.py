from services.common.migrations_env import run
from services.portal.store import (  # noqa: F401 - their tables join Base.metadata
    report_models,
    supplies_models,
    support_models,
)
from services.portal.store.models import Base

run(Base.metadata)

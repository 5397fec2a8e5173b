from services.common.migrations_env import run
from services.portal.store.models import Base

run(Base.metadata)

from ferryman_operator import deployment as dep
from ferryman_operator.kube import template_hash
from ferryman_operator.settings import OperatorSettings

POOL = {
    "metadata": {"name": "p", "namespace": "n", "uid": "u"},
    "spec": {"image": "img:1", "module": "m"},
}


def test_template_hash_ignores_replicas_but_not_the_pod() -> None:
    settings = OperatorSettings()
    one, two = dep.build(POOL, settings, 1), dep.build(POOL, settings, 2)
    assert template_hash(one) == template_hash(two)
    other = dep.build({**POOL, "spec": {**POOL["spec"], "image": "img:2"}}, settings, 1)
    assert template_hash(one) != template_hash(other)

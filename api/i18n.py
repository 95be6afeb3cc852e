"""Console strings, Spanish first; English as the alternative. Kept as data."""

from __future__ import annotations

from collections.abc import Callable

STRINGS: dict[str, dict[str, str]] = {
    "es": {
        "app.title": "Vigía — CERT nacional",
        "nav.alerts": "Alertas",
        "nav.logout": "Cerrar sesión",
        "login.title": "Iniciar sesión",
        "login.token": "Token de acceso",
        "login.submit": "Entrar",
        "login.invalid": "Token inválido o revocado.",
        "login.required": "Inicie sesión para ver la consola.",
        "login.forbidden": "Su rol no tiene acceso a la consola.",
        "login.help": "Use el token que imprimió «vigia up» o uno creado con «vigia token create».",
        "alerts.title": "Alertas",
        "alerts.empty": "No hay alertas con estos filtros.",
        "alerts.when": "Primera vez",
        "alerts.count": "Eventos",
        "alerts.source": "Origen",
        "alerts.destination": "Destino",
        "alerts.field": "Visto en",
        "alerts.seen": "Valor observado",
        "alerts.indicator": "Indicador",
        "alerts.provider": "Fuente",
        "alerts.entity": "Entidad",
        "alerts.status": "Estado",
        "alerts.filter": "Filtrar",
        "alerts.all": "Todos",
        "alerts.next": "Siguientes »",
        "alerts.type": "Tipo de indicador",
        "status.new": "Nueva",
        "status.acknowledged": "Reconocida",
        "status.dismissed": "Descartada",
        "role": "Rol",
    },
    "en": {
        "app.title": "Vigía — national CERT",
        "nav.alerts": "Alerts",
        "nav.logout": "Log out",
        "login.title": "Log in",
        "login.token": "Access token",
        "login.submit": "Enter",
        "login.invalid": "Invalid or revoked token.",
        "login.required": "Log in to see the console.",
        "login.forbidden": "Your role has no access to the console.",
        "login.help": "Use the token printed by `vigia up` or one made with `vigia token create`.",
        "alerts.title": "Alerts",
        "alerts.empty": "No alerts match these filters.",
        "alerts.when": "First seen",
        "alerts.count": "Events",
        "alerts.source": "Source",
        "alerts.destination": "Destination",
        "alerts.field": "Seen in",
        "alerts.seen": "Observed value",
        "alerts.indicator": "Indicator",
        "alerts.provider": "Provider",
        "alerts.entity": "Entity",
        "alerts.status": "Status",
        "alerts.filter": "Filter",
        "alerts.all": "All",
        "alerts.next": "Next »",
        "alerts.type": "Indicator type",
        "status.new": "New",
        "status.acknowledged": "Acknowledged",
        "status.dismissed": "Dismissed",
        "role": "Role",
    },
}


def translator(lang: str) -> Callable[[str], str]:
    table = STRINGS.get(lang, STRINGS["es"])
    return lambda key: table.get(key, STRINGS["es"].get(key, key))

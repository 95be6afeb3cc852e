"""Made-up names of public entities in the style of Bolivia's: the nine departments
are real (the dashboard groups by them); every ministry, town, university and
company name is invented from the parts below, so none names a real body."""

from __future__ import annotations

import random
import re
import unicodedata

DEPARTMENTS = (
    ("lpz", "La Paz"),
    ("cbba", "Cochabamba"),
    ("scz", "Santa Cruz"),
    ("oru", "Oruro"),
    ("pts", "Potosí"),
    ("chq", "Chuquisaca"),
    ("tja", "Tarija"),
    ("ben", "Beni"),
    ("pnd", "Pando"),
)

MINISTRIES = (
    "Planificación y Desarrollo Territorial",
    "Economía Plural y Finanzas",
    "Obras Públicas y Vivienda Social",
    "Salud Comunitaria",
    "Educación y Formación Técnica",
    "Gobierno y Convivencia Ciudadana",
    "Defensa Integral",
    "Relaciones Exteriores y Cooperación",
    "Justicia e Institucionalidad",
    "Trabajo y Previsión Social",
    "Desarrollo Rural y Soberanía Alimentaria",
    "Medio Ambiente, Bosques y Agua",
    "Hidrocarburos y Transición Energética",
    "Minería y Metalurgia Responsable",
    "Culturas, Turismo y Patrimonio",
    "Comunicación y Transparencia",
    "Desarrollo Productivo e Industria Local",
    "Deportes y Juventudes",
)
AGENCY_KINDS = ("Servicio Nacional de", "Agencia Estatal de", "Autoridad de Fiscalización de")
AGENCY_TOPICS = (
    "Registro Cívico Digital",
    "Caminos Vecinales",
    "Sanidad Agropecuaria",
    "Telecomunicaciones Rurales",
    "Gestión de Riesgos",
    "Archivos Públicos",
    "Catastro Nacional",
    "Recaudación Tributaria",
    "Seguros de Salud",
    "Aguas y Saneamiento",
    "Compras Estatales",
    "Gobierno Electrónico",
    "Meteorología Aplicada",
    "Migración y Extranjería",
)
# Place names in the shape of the country's towns: a saint or "Villa" and a
# Quechua, Aymara or Guaraní-sounding word, combined so none is a real municipality.
PLACE_HEADS = ("San Pedro de", "Santa Rosa de", "Villa", "Puerto", "San Juan de", "Santiago de", "")
PLACE_ROOTS = (
    "Qhantati",
    "Wiñay Pampa",
    "Sallqa",
    "Ch'uxña",
    "Kusi Marka",
    "Ararí",
    "Yvyty",
    "Tunari Bajo",
    "Mojotoro Alto",
    "Llallagua Chico",
    "Chaqui Pata",
    "Iñambari",
    "Curichi Verde",
    "Palmar Sur",
    "Surutú",
    "Apolobamba Norte",
    "Q'ara Jawira",
    "Tiquina Sur",
    "Isoso Alto",
    "Machareti Norte",
    "Quillacas Viejo",
    "Totora Pampa",
    "Huari Chico",
    "Mizque Alto",
    "Paria Nuevo",
    "Sipe Sipe Alto",
    "Caiza Sur",
    "Yotala Norte",
    "Ichilo Bajo",
    "Tahua Grande",
)
NATIONS = ("Aymara", "Quechua", "Guaraní", "Uru", "Mojeño", "Chiquitano", "Tacana", "Yuracaré")
UNIVERSITY_KINDS = (
    "Universidad Mayor de",
    "Universidad Autónoma de",
    "Universidad Pública de",
    "Universidad Técnica de",
)
COMPANY_SECTORS = (
    "Agua Potable",
    "Cemento Andino",
    "Transporte por Cable",
    "Litio y Salmueras",
    "Semillas Nativas",
    "Correos y Paquetería",
    "Fármacos Genéricos",
    "Lácteos del Altiplano",
    "Energía Solar",
    "Navegación Fluvial",
    "Papel y Cartón",
    "Almacenes Estratégicos",
    "Servicios Aeroportuarios",
    "Fibra Óptica",
    "Acopio de Granos",
    "Vidrio y Envases",
    "Textiles Andinos",
    "Gas Domiciliario",
    "Televisión Pública",
    "Seguros Estatales",
)


def slug(text: str) -> str:
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", plain.lower()).strip("-")


def places(rng: random.Random, n: int) -> list[str]:
    """n distinct made-up town names."""
    pool = [f"{h} {r}".strip() for h in PLACE_HEADS for r in PLACE_ROOTS]
    rng.shuffle(pool)
    return pool[:n]

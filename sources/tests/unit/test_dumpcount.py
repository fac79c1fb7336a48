"""Row counts read from mysqldump's output, in both formats, whatever the chunking."""

from __future__ import annotations

import pytest

from backupmanager.databases.dumpcount import MysqlDumpCounter

NEW_FORMAT = b"""/*M!999999\\- enable the sandbox mode */
--
-- Table structure for table `t`
--
CREATE TABLE `t` (`id` int, `s` text);
LOCK TABLES `t` WRITE;
/*!40000 ALTER TABLE `t` DISABLE KEYS */;
INSERT INTO `t` VALUES
(1,'a),(b',0x00FF),
(2,'it\\'s \\\\ (x',NULL),
(3,'h\\xc3\\xa9llo\\n(',0x0A0D);
INSERT INTO `t` VALUES
(4,'(',NULL);
/*!40000 ALTER TABLE `t` ENABLE KEYS */;
UNLOCK TABLES;
LOCK TABLES `odd``name (x)` WRITE;
UNLOCK TABLES;
DELIMITER ;;
/*!50003 CREATE*/ /*!50017 DEFINER=`root`@`localhost`*/ /*!50003 trigger tr before insert on t
INSERT INTO `t` VALUES (99, 'not data') */;;
DELIMITER ;
/*!50001 VIEW `v` AS select `t`.`id` AS `id` from `t` */;
-- Dump completed on 2026-05-08  3:00:00
"""

OLD_FORMAT = (
    NEW_FORMAT.replace(b"VALUES\n(1", b"VALUES (1")
    .replace(b"),\n(", b"),(")
    .replace(b"VALUES\n(4", b"VALUES (4")
)


@pytest.mark.parametrize("dump", [NEW_FORMAT, OLD_FORMAT], ids=["row per line", "one line"])
@pytest.mark.parametrize("chunk", [1, 3, 17, 64, 1 << 20])
def test_counts_rows_views_and_empty_tables_whatever_the_chunks(dump: bytes, chunk: int) -> None:
    counter = MysqlDumpCounter()
    for start in range(0, len(dump), chunk):
        counter.feed(dump[start : start + chunk])
    contents = counter.finish()
    assert contents.tables == {"t": 4, "odd`name (x)": 0}
    assert contents.views == ["v"]


def test_the_old_format_ignores_parentheses_inside_strings() -> None:
    assert b"VALUES (1,'a),(b'" in OLD_FORMAT
    counter = MysqlDumpCounter()
    counter.feed(OLD_FORMAT)
    assert counter.finish().tables["t"] == 4


def test_a_dump_without_data_sections_counts_nothing() -> None:
    counter = MysqlDumpCounter()
    counter.feed(b"-- nothing here\nCREATE TABLE `x` (a int);\n")
    assert counter.finish().tables == {}
